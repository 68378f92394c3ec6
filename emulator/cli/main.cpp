// sluice: the command line. Exceptions stop here; everything below returns values.
#include "cli.hpp"

#include "sluice/common/log.hpp"
#include "sluice/common/process.hpp"

#include <csignal>
#include <cstdio>
#include <exception>
#include <string>

int main(int argc, char** argv) {
  // The reaper must be forked before any thread or socket exists.
  sluice::proc::start_reaper();
  std::signal(SIGPIPE, SIG_IGN);
  try {
    return sluice::cli::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sluice: %s\n", e.what());
    return 2;
  }
}
