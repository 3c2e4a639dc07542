export { AgentstateSaver, type SaverOptions, type PruneReport } from "./saver.js";
export { AgentstateAdmin } from "./admin.js";
export { AgentstateError, type ClientOptions } from "./http.js";
export { RunClient, type SaveOptions, type SaveAck, type RunRecord } from "./runs.js";
