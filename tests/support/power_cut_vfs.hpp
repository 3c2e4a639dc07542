// A power cut for SQLite, simulated honestly: only what reached fsync survives for sure.
//
// RegisterPowerCutVfs() makes a SQLite VFS the process's default. It wraps the real "unix"
// VFS and, for every database, WAL and rollback-journal file, keeps beside it:
//
//   FILE.durable   the file's contents as of its last completed xSync (what a disk holds
//                  for sure after a power cut), replaced by rename, so never half-written;
//   FILE.pending   every write and truncate since then, in the order they were made.
//
// Kill the process with SIGKILL at any moment. ComposeAfterPowerCut() then builds what a
// disk could hold after the cut: the durable contents, plus any subset of the pending
// writes, each kept or lost independently (a disk reorders what was not synced), some kept
// only in part, torn at a 512-byte sector boundary. A real disk can do exactly these
// things to unsynced data, and no more, given the two assumptions SQLite itself makes
// (a sector is not damaged by writes outside it; a created file's directory entry persists).
#pragma once

#include <cstdint>
#include <string>

namespace agentstate::testing {

// Registers the VFS ("powercut") as the default; idempotent. Returns false if SQLite has no
// "unix" VFS to wrap.
bool RegisterPowerCutVfs();

struct PowerCutImage {
  int files = 0;           // files written to the image (the database, its WAL, ...)
  int pending_writes = 0;  // unsynced writes and truncates found
  int kept = 0;            // of those, applied to the image
  int torn = 0;            // of those, applied only up to a sector boundary
};

// Writes, for `source_db` ("/dir/state.db") and its "-wal" and "-journal" files, the state a
// disk may hold after a power cut to `target_db` and the same suffixes; the random choices
// come from `seed`. A file with neither a durable copy nor a pending write did not exist.
PowerCutImage ComposeAfterPowerCut(const std::string& source_db, const std::string& target_db,
                                   uint64_t seed);

}  // namespace agentstate::testing
