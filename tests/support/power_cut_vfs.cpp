#include "support/power_cut_vfs.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <vector>

namespace agentstate::testing {
namespace {

namespace fs = std::filesystem;

// One file's pending log. Its mutex is held across the real write and its record, and
// across the real sync and the copy it makes durable, so the log's order is the writes'
// order and the durable copy is exactly what the sync covered.
struct Tracked {
  std::string path;
  std::mutex mu;
  int pending_fd = -1;
};

std::mutex g_mu;
std::map<std::string, std::shared_ptr<Tracked>> g_files;
sqlite3_vfs* g_real = nullptr;
sqlite3_vfs g_vfs;

constexpr char kWrite = 'W';
constexpr char kTruncate = 'T';
constexpr std::size_t kHeader = 1 + 8 + 4;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(bytes.data(), std::streamsize(bytes.size()));
}

// The durable copy, replaced by rename: a kill during the copy leaves the previous one.
void MakeDurable(const std::string& path) {
  WriteFile(path + ".durable.tmp", ReadAll(path));
  fs::rename(path + ".durable.tmp", path + ".durable");
}

std::shared_ptr<Tracked> TrackedFor(const std::string& path) {
  std::lock_guard lock(g_mu);
  auto& t = g_files[path];
  if (!t) {
    t = std::make_shared<Tracked>();
    t->path = path;
    // What the file holds when first opened was there before this process: durable.
    if (fs::exists(path) && !fs::exists(path + ".durable")) MakeDurable(path);
    t->pending_fd =
        ::open((path + ".pending").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  }
  return t;
}

void Record(Tracked& t, char kind, uint64_t offset, const void* data, uint32_t len) {
  if (t.pending_fd < 0) return;
  char header[kHeader];
  header[0] = kind;
  std::memcpy(header + 1, &offset, 8);
  std::memcpy(header + 9, &len, 4);
  iovec parts[2] = {{header, kHeader}, {const_cast<void*>(data), len}};
  // A short write (a kill mid-record) leaves a partial last record, which Compose ignores.
  (void)::writev(t.pending_fd, parts, len ? 2 : 1);
}

struct PcFile {
  sqlite3_file base;
  sqlite3_file* real;
  std::shared_ptr<Tracked>* tracked;  // null for files a power cut need not model
};

PcFile* Pc(sqlite3_file* f) { return reinterpret_cast<PcFile*>(f); }
sqlite3_file* Real(sqlite3_file* f) { return Pc(f)->real; }
const sqlite3_io_methods& M(sqlite3_file* f) { return *Real(f)->pMethods; }

int Close(sqlite3_file* f) {
  const int rc = M(f).xClose(Real(f));
  delete Pc(f)->tracked;
  Pc(f)->tracked = nullptr;
  return rc;
}
int Read(sqlite3_file* f, void* buf, int amt, sqlite3_int64 off) {
  return M(f).xRead(Real(f), buf, amt, off);
}
int Write(sqlite3_file* f, const void* buf, int amt, sqlite3_int64 off) {
  if (!Pc(f)->tracked) return M(f).xWrite(Real(f), buf, amt, off);
  Tracked& t = **Pc(f)->tracked;
  std::lock_guard lock(t.mu);
  const int rc = M(f).xWrite(Real(f), buf, amt, off);
  if (rc == SQLITE_OK) Record(t, kWrite, uint64_t(off), buf, uint32_t(amt));
  return rc;
}
int Truncate(sqlite3_file* f, sqlite3_int64 size) {
  if (!Pc(f)->tracked) return M(f).xTruncate(Real(f), size);
  Tracked& t = **Pc(f)->tracked;
  std::lock_guard lock(t.mu);
  const int rc = M(f).xTruncate(Real(f), size);
  if (rc == SQLITE_OK) Record(t, kTruncate, uint64_t(size), nullptr, 0);
  return rc;
}
int Sync(sqlite3_file* f, int flags) {
  if (!Pc(f)->tracked) return M(f).xSync(Real(f), flags);
  Tracked& t = **Pc(f)->tracked;
  std::lock_guard lock(t.mu);
  const int rc = M(f).xSync(Real(f), flags);
  if (rc == SQLITE_OK && t.pending_fd >= 0) {
    // Emptying the log before the durable copy is replaced: a kill in between leaves the
    // previous copy and no pending writes, a state the disk may be in before a sync returns.
    WriteFile(t.path + ".durable.tmp", ReadAll(t.path));
    (void)::ftruncate(t.pending_fd, 0);
    fs::rename(t.path + ".durable.tmp", t.path + ".durable");
  }
  return rc;
}
int FileSize(sqlite3_file* f, sqlite3_int64* size) { return M(f).xFileSize(Real(f), size); }
int Lock(sqlite3_file* f, int level) { return M(f).xLock(Real(f), level); }
int Unlock(sqlite3_file* f, int level) { return M(f).xUnlock(Real(f), level); }
int CheckReservedLock(sqlite3_file* f, int* out) { return M(f).xCheckReservedLock(Real(f), out); }
int FileControl(sqlite3_file* f, int op, void* arg) { return M(f).xFileControl(Real(f), op, arg); }
int SectorSize(sqlite3_file* f) { return M(f).xSectorSize(Real(f)); }
int DeviceCharacteristics(sqlite3_file* f) { return M(f).xDeviceCharacteristics(Real(f)); }
int ShmMap(sqlite3_file* f, int page, int size, int extend, void volatile** out) {
  return M(f).xShmMap(Real(f), page, size, extend, out);
}
int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
  return M(f).xShmLock(Real(f), offset, n, flags);
}
void ShmBarrier(sqlite3_file* f) { M(f).xShmBarrier(Real(f)); }
int ShmUnmap(sqlite3_file* f, int del) { return M(f).xShmUnmap(Real(f), del); }
int Fetch(sqlite3_file* f, sqlite3_int64 off, int amt, void** out) {
  return M(f).xFetch(Real(f), off, amt, out);
}
int Unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) { return M(f).xUnfetch(Real(f), off, p); }

const sqlite3_io_methods kMethods = {
    3,
    Close,
    Read,
    Write,
    Truncate,
    Sync,
    FileSize,
    Lock,
    Unlock,
    CheckReservedLock,
    FileControl,
    SectorSize,
    DeviceCharacteristics,
    ShmMap,
    ShmLock,
    ShmBarrier,
    ShmUnmap,
    Fetch,
    Unfetch,
};

int Open(sqlite3_vfs*, const char* name, sqlite3_file* f, int flags, int* out_flags) {
  PcFile* p = Pc(f);
  p->real = reinterpret_cast<sqlite3_file*>(p + 1);
  p->tracked = nullptr;
  p->base.pMethods = nullptr;
  const int rc = g_real->xOpen(g_real, name, p->real, flags, out_flags);
  if (rc != SQLITE_OK) {
    if (p->real->pMethods) p->real->pMethods->xClose(p->real);
    return rc;
  }
  if (p->real->pMethods->iVersion < 3) {
    p->real->pMethods->xClose(p->real);
    return SQLITE_CANTOPEN;
  }
  if (name && (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_JOURNAL))) {
    p->tracked = new std::shared_ptr<Tracked>(TrackedFor(name));
  }
  p->base.pMethods = &kMethods;
  return SQLITE_OK;
}

// A deleted file (a WAL or journal folded back) takes its durable copy and its log with it.
int Delete(sqlite3_vfs*, const char* name, int sync_dir) {
  const int rc = g_real->xDelete(g_real, name, sync_dir);
  if (rc == SQLITE_OK) {
    std::lock_guard lock(g_mu);
    if (auto it = g_files.find(name); it != g_files.end()) {
      std::lock_guard file_lock(it->second->mu);
      if (it->second->pending_fd >= 0) ::close(it->second->pending_fd);
      it->second->pending_fd = -1;
      g_files.erase(it);
    }
    std::error_code ec;
    fs::remove(std::string(name) + ".durable", ec);
    fs::remove(std::string(name) + ".pending", ec);
  }
  return rc;
}

}  // namespace

bool RegisterPowerCutVfs() {
  static const bool registered = [] {
    g_real = sqlite3_vfs_find("unix");
    if (!g_real) return false;
    g_vfs = *g_real;  // every call but open and delete goes to the real VFS as it is
    g_vfs.pNext = nullptr;
    g_vfs.zName = "powercut";
    g_vfs.szOsFile = int(sizeof(PcFile)) + g_real->szOsFile;
    g_vfs.xOpen = Open;
    g_vfs.xDelete = Delete;
    return sqlite3_vfs_register(&g_vfs, 1) == SQLITE_OK;
  }();
  return registered;
}

PowerCutImage ComposeAfterPowerCut(const std::string& source_db, const std::string& target_db,
                                   uint64_t seed) {
  PowerCutImage image;
  std::mt19937_64 rng(seed);
  for (const char* suffix : {"", "-wal", "-journal"}) {
    const std::string src = source_db + suffix;
    std::error_code ec;
    fs::remove(target_db + suffix, ec);
    const bool durable = fs::exists(src + ".durable");
    const std::string log = ReadAll(src + ".pending");
    if (!durable && log.empty()) continue;
    std::string bytes = durable ? ReadAll(src + ".durable") : std::string();
    for (std::size_t at = 0; at + kHeader <= log.size();) {
      const char kind = log[at];
      uint64_t offset = 0;
      uint32_t len = 0;
      std::memcpy(&offset, log.data() + at + 1, 8);
      std::memcpy(&len, log.data() + at + 9, 4);
      if (at + kHeader + len > log.size()) break;  // the record a kill cut short
      const char* data = log.data() + at + kHeader;
      at += kHeader + len;
      ++image.pending_writes;
      if (rng() % 2) continue;  // this one never reached the platter
      ++image.kept;
      if (kind == kTruncate) {
        bytes.resize(offset);
        continue;
      }
      uint32_t keep = len;
      if (len > 512 && rng() % 8 == 0) {  // torn: only its first sectors made it
        keep = uint32_t(rng() % (len / 512)) * 512;
        ++image.torn;
      }
      if (bytes.size() < offset + keep) bytes.resize(offset + keep);
      std::memcpy(bytes.data() + offset, data, keep);
    }
    WriteFile(target_db + suffix, bytes);
    ++image.files;
  }
  return image;
}

}  // namespace agentstate::testing
