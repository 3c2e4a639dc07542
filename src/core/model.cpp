#include "agentstate/model.hpp"

namespace agentstate {

std::string_view Name(CheckpointType type) {
  switch (type) {
    case CheckpointType::kAuto: return "auto";
    case CheckpointType::kManual: return "manual";
    case CheckpointType::kCritical: return "critical";
    case CheckpointType::kRecovery: return "recovery";
  }
  return "auto";
}

std::string_view Name(RunStatus status) {
  return status == RunStatus::kCompleted ? "completed" : "active";
}

std::optional<CheckpointType> ParseCheckpointType(std::string_view name) {
  for (auto t : {CheckpointType::kAuto, CheckpointType::kManual, CheckpointType::kCritical,
                 CheckpointType::kRecovery}) {
    if (Name(t) == name) return t;
  }
  return std::nullopt;
}

bool KeepsCheckpoint(CheckpointType type, bool is_recovery_point) {
  return type != CheckpointType::kAuto || is_recovery_point;
}

bool HealthReport::healthy() const {
  for (const auto& t : tiers) {
    if (!t.healthy) return false;
  }
  return !tiers.empty();
}

}  // namespace agentstate
