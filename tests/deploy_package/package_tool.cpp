// A small driver of sluice_package for the end-to-end tests, until `sluice deploy` exists.
//   package_tool zip DIR [--prefix P] [--out FILE]
//   package_tool layer REQUIREMENTS --python X.Y [--cache DIR] [--platform P] [--out FILE] [-- PIP_ARGS...]
//   package_tool limits FUNCTION CODE.zip [LAYER.zip...]
// Prints one JSON object on stdout; errors go to stderr with exit status 1.
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "sluice/package/package.hpp"

using namespace sluice::package;

namespace {

nlohmann::json describe(const Archive& a) {
  return {{"sha256_hex", a.sha256_hex}, {"sha256_b64", a.sha256_b64}, {"unzipped_size", a.unzipped_size},
          {"files", a.files}, {"zip_size", a.bytes.size()}, {"needs_s3", needs_s3(a)}};
}

void write_out(const std::string& path, const std::string& bytes) {
  if (path.empty()) return;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

int usage() {
  std::cerr << "usage: package_tool zip DIR [--prefix P] [--out FILE]\n"
               "       package_tool layer REQUIREMENTS --python X.Y [--cache DIR] [--platform P] [--out FILE] [-- PIP_ARGS...]\n"
               "       package_tool limits FUNCTION CODE.zip [LAYER.zip...]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() < 2) return usage();
  try {
    const std::string cmd = args[0];
    if (cmd == "zip") {
      std::string prefix, out;
      for (std::size_t i = 2; i + 1 < args.size(); i += 2) {
        if (args[i] == "--prefix") prefix = args[i + 1];
        else if (args[i] == "--out") out = args[i + 1];
        else return usage();
      }
      const Archive a = zip_directory(args[1], prefix);
      write_out(out, a.bytes);
      std::cout << describe(a).dump() << "\n";
    } else if (cmd == "layer") {
      RequirementsOptions o;
      std::string python_version, out;
      std::size_t i = 2;
      for (; i < args.size() && args[i] != "--"; i += 2) {
        if (i + 1 >= args.size()) return usage();
        if (args[i] == "--python") python_version = args[i + 1];
        else if (args[i] == "--cache") o.cache_dir = args[i + 1];
        else if (args[i] == "--platform") o.platform = args[i + 1];
        else if (args[i] == "--out") out = args[i + 1];
        else return usage();
      }
      if (i < args.size()) o.extra_pip_args.assign(args.begin() + static_cast<long>(i) + 1, args.end());
      const LayerBuild b = build_python_layer(args[1], python_version, o);
      write_out(out, b.archive.bytes);
      auto j = describe(b.archive);
      j["from_cache"] = b.from_cache;
      j["zip_path"] = b.zip_path.string();
      std::cout << j.dump() << "\n";
    } else if (cmd == "limits") {
      if (args.size() < 3) return usage();
      const Archive code = describe_zip(read(args[2]));
      std::vector<Archive> layers;
      for (std::size_t i = 3; i < args.size(); ++i) layers.push_back(describe_zip(read(args[i])));
      std::vector<const Archive*> ptrs;
      for (const auto& l : layers) ptrs.push_back(&l);
      check_limits(args[1], code, ptrs);
      std::cout << nlohmann::json{{"ok", true}, {"needs_s3", needs_s3(code)}}.dump() << "\n";
    } else {
      return usage();
    }
  } catch (const std::exception& e) {
    std::cerr << "package_tool: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
