// `sluice deploy` and `sluice rollback`: plan the validated stack against what exists in
// AWS (or at --endpoint-url), then apply it idempotently, record it per stage in S3, and
// move aliases for promotion and rollback. Exceptions leave through run(): the CLI turns
// them into one sentence.
#pragma once

#include "sluice/stack/model.hpp"

#include <optional>
#include <string>
#include <vector>

namespace sluice::deploy {

enum class Mode { deploy, promote, rollback };

struct Options {
  std::string stage;                        // ENV
  Mode mode = Mode::deploy;
  std::string promote_from;                 // Mode::promote: the stage whose record is copied
  bool dry_run = false;                     // plan only: no mutating call at all
  bool yes = false;                         // do not ask, even on a terminal
  std::optional<std::string> endpoint_url;  // every service at this URL (moto)
  std::string region;                       // empty: the stack's region
  std::string profile;
  std::string execution_role_arn;           // --role-arn: use this role, create none
  std::string assume_role_arn;              // --assume-role: sts:AssumeRole first
  int lock_timeout_s = 60;
  bool force_unlock = false;
  int max_attempts = 3;                     // the SDKs' standard retry mode
  // Extra arguments for pip when requirements layers are built (--pip-arg, SLUICE_PIP_ARGS),
  // e.g. {"--no-index", "--find-links", "wheels/"} or {"--index-url", URL}.
  std::vector<std::string> pip_args;
};

// Plans, asks (terminal without --yes), applies, prints progress and a summary on stderr.
// Returns the exit status: 0 done (or nothing to do), 1 refused or failed with a message
// already printed. Throws for credential, service and transport errors.
int run(const stack::Stack& stack, const Options& options);

// Why STAGE cannot be deployed to ("" when it can): it becomes the alias STAGE of every
// function, so it must be a Lambda alias name (letters, digits, '-', '_'; 1 to 128; not only
// digits). run() checks it too, before any call.
std::string stage_name_error(const std::string& stage);

// The message a user reads for an exception thrown by run().
std::string describe_error(const std::exception& e);

}  // namespace sluice::deploy
