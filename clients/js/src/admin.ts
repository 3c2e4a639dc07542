// Tenants, made and dropped with an admin token (POST and DELETE /v1/admin/tenants/{t}).
import { Http, type ClientOptions, seg } from "./http.js";

export class AgentstateAdmin {
  private readonly http: Http;
  constructor(options: ClientOptions) {
    this.http = new Http(options);
  }
  /** Makes a tenant and returns its first agent token (shown once). */
  async createTenant(tenant: string): Promise<string> {
    const r = await this.http.call<{ token: string }>("POST", `/v1/admin/tenants/${seg(tenant)}`);
    return r!.token;
  }
  /** Drops a tenant: its tokens revoked, then every run and checkpoint thread deleted. */
  async dropTenant(tenant: string): Promise<void> {
    await this.http.call("DELETE", `/v1/admin/tenants/${seg(tenant)}`);
  }
}
