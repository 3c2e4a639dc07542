// A valid save request for tests that care only about the run, its thread and the payload.
#pragma once

#include <string>

#include "agentstate/model.hpp"

namespace agentstate::testing {

inline SaveRequest SampleSave(std::string run_id, std::string payload,
                              std::string thread_id = "thread_1") {
  SaveRequest r;
  r.run_id = std::move(run_id);
  r.thread_id = std::move(thread_id);
  r.user_id = "user_1";
  r.agent_type = "triage_agent";
  r.step_count = 1;
  r.phase = "planning";
  r.payload = std::move(payload);
  return r;
}

}  // namespace agentstate::testing
