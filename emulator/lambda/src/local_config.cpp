#include "sluice/lambda/local_config.hpp"

#include "sluice/common/util.hpp"

#include <nlohmann/json.hpp>

#include <fstream>
#include <iterator>
#include <stdexcept>

namespace sluice::lambda {

namespace {

using json = nlohmann::json;

std::map<std::string, std::string> variables_of(const json& obj, const std::string& source, const std::string& key) {
  if (!obj.is_object())
    throw std::runtime_error(source + ": " + sluice::quoted(key) + " must be an object of variable names to values, not " +
                             obj.type_name());
  std::map<std::string, std::string> out;
  for (const auto& [name, v] : obj.items()) {
    if (v.is_string())
      out[name] = v.get<std::string>();
    else if (v.is_number() || v.is_boolean())
      out[name] = v.dump();  // 5 -> "5", true -> "true", as CloudFormation turns them into text
    else
      throw std::runtime_error(source + ": " + key + "." + name + " must be a string, a number or a boolean, not " +
                               v.type_name());
  }
  return out;
}

}  // namespace

EnvOverrides parse_env_overrides(const std::string& text, const std::string& source) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    // "[json.exception.parse_error.101] parse error at line 3, column 5: ..." -> from "parse error"
    std::string what = e.what();
    auto at = what.find("parse error");
    throw std::runtime_error(source + ": not valid JSON: " + (at == std::string::npos ? what : what.substr(at)));
  }
  if (!doc.is_object())
    throw std::runtime_error(source + ": must be a JSON object like {\"Parameters\": {\"NAME\": \"value\"}, "
                             "\"FUNCTION\": {\"NAME\": \"value\"}}, not " + std::string(doc.type_name()));
  EnvOverrides o;
  for (const auto& [key, v] : doc.items()) {
    if (key == "Parameters")
      o.all = variables_of(v, source, key);
    else
      o.per_function[key] = variables_of(v, source, key);
  }
  return o;
}

EnvOverrides load_env_overrides(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read the env-vars file " + sluice::quoted(file.string()));
  return parse_env_overrides(std::string(std::istreambuf_iterator<char>(in), {}), file.string());
}

std::map<std::string, std::string> apply_env_overrides(const EnvOverrides& o, const std::string& function,
                                                       std::map<std::string, std::string> declared) {
  auto own = o.per_function.find(function);
  for (auto& [name, value] : declared) {
    if (own != o.per_function.end())
      if (auto it = own->second.find(name); it != own->second.end()) {
        value = it->second;
        continue;
      }
    if (auto it = o.all.find(name); it != o.all.end()) value = it->second;
  }
  return declared;
}

std::vector<std::string> split_args(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (char c : text) {
    if (quote) {
      if (c == quote)
        quote = 0;
      else
        cur += c;
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) out.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (quote) throw std::runtime_error(std::string("--debug-args has an unclosed ") + quote + " quote: " + text);
  if (in_word) out.push_back(std::move(cur));
  return out;
}

}  // namespace sluice::lambda
