// The parsed stack file before any schema is applied: a small tree of
// scalars, lists and mappings that keeps what the validator needs and the
// YAML/JSON libraries do not give together: line numbers for every key and
// value, duplicate keys (kept, so they can be reported), and whether a scalar
// was quoted (a quoted "256" is a string, a plain 256 is a number).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "sluice/stack/loader.hpp"

namespace sluice::stack::detail {

struct Node;
using NodeP = std::shared_ptr<const Node>;

struct Entry {
  std::string key;
  int key_line = 0;
  NodeP value;
};

struct Node {
  enum class Kind { null, scalar, seq, map };
  Kind kind = Kind::null;
  std::string text;            // scalars: the text as written (after unquoting)
  bool plain = false;          // scalar written without quotes (YAML plain; JSON number/true/false)
  int line = 0;                // 1-based; 0 when unknown
  std::vector<NodeP> items;    // seq
  std::vector<Entry> entries;  // map, in file order, duplicates kept
};

struct ParsedDocument {
  NodeP root;                     // null when the text could not be parsed
  std::vector<Problem> problems;  // syntax errors and tree-level complaints
  bool json = false;              // the text was read as JSON
};

// Reads YAML or JSON, by content. Never throws.
ParsedDocument parse_document(const std::string& text);

// Strict JSON (RFC 8259) into the same tree. Exposed for tests and for jwks files.
ParsedDocument parse_json(const std::string& text);
ParsedDocument parse_yaml(const std::string& text);

// "functions" + "list-movies" -> "functions.list-movies"; odd names go in brackets:
// routes["GET /movies"], stages["$default"], layers[0].
std::string join_path(const std::string& parent, const std::string& key);
std::string index_path(const std::string& parent, std::size_t index);

}  // namespace sluice::stack::detail
