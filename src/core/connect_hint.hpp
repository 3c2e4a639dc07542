// What to tell a person whose store could not be opened, by what the client library said.
#pragma once

#include <cctype>
#include <string>
#include <string_view>

namespace agentstate::core {

// An unreachable server (refused, timed out, unknown host, missing socket) gets the
// command that starts the local services; a server that answered and refused (a password,
// a database, a parameter) gets told to check the URI, where starting services would not
// help.
inline std::string ConnectHint(std::string_view error) {
  std::string e;
  for (char c : error) e.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  for (std::string_view w : {"refused", "timeout", "timed out", "could not translate host name",
                             "no such file or directory", "unreachable", "no route to host",
                             "connection reset", "server closed the connection", "end of file"}) {
    if (e.find(w) != std::string::npos && e.find("password") == std::string::npos) {
      return "is it running? Local services start with `bash scripts/services.sh up`";
    }
  }
  return "check the user, password, database and parameters in the URI";
}

}  // namespace agentstate::core
