// Deterministic zips with libzip. What could make two zips of the same tree differ,
// and what we do about it:
//  - directory order: entries are collected first, then sorted by their path bytes;
//  - modification times: every entry gets the fixed DOS date/time (zip_file_set_dostime;
//    zip_file_set_mtime would go through the local time zone);
//  - permissions and umask: the mode is 0755 or 0644 from the execute bits alone, written
//    as Unix external attributes (overriding what libzip takes from stat());
//  - extra fields (UT timestamps, ux uid/gid): libzip writes none for new entries, and the
//    tests check that the local and central headers carry no extra field;
//  - data descriptors: the output is a seekable memory buffer, so libzip writes sizes and
//    CRC into the local header and sets no data-descriptor flag (checked by the tests);
//  - the current directory: entry names are relative to `dir`, never to the cwd.
#include "digest.hpp"
#include "sluice/package/package.hpp"

#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>

namespace sluice::package {

namespace {

struct Entry {
  std::string name;   // path inside the zip, '/'-separated, with the prefix
  fs::path source;    // path on disk (symlinks resolved by open())
  bool executable = false;
  std::uint64_t size = 0;
};

bool excluded(const std::string& name, bool is_dir) {
  if (name == ".git") return true;  // a directory, or the file a worktree or submodule has
  if (is_dir && (name == ".sluice" || name == "__pycache__")) return true;
  return !is_dir && name.size() > 4 && name.compare(name.size() - 4, 4, ".pyc") == 0;
}

std::string describe_link(const fs::path& p) {
  std::error_code ec;
  auto target = fs::read_symlink(p, ec);
  return ec ? p.string() : p.string() + " -> " + target.string();
}

struct DirId {
  dev_t dev;
  ino_t ino;
  fs::path path;
  fs::path via_link;  // the innermost symlink followed to get here ("" when none)
};

void walk(const fs::path& dir, const std::string& rel, std::vector<DirId>& ancestors, std::vector<Entry>& out) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) throw PackageError("cannot read directory " + dir.string() + ": " + ec.message());
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    const fs::path p = it->path();
    const std::string name = p.filename().string();
    struct stat ls {};
    if (::lstat(p.c_str(), &ls) != 0)
      throw PackageError("cannot read " + p.string() + ": " + std::strerror(errno));
    const bool is_link = S_ISLNK(ls.st_mode);
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) {
      const int err = errno;
      if (excluded(name, false) || excluded(name, true)) continue;
      if (is_link && err == ELOOP) throw PackageError("symlink loop at " + describe_link(p));
      if (is_link && err == ENOENT) throw PackageError("dangling symlink " + describe_link(p) + " (its target does not exist)");
      throw PackageError("cannot read " + p.string() + ": " + std::strerror(err));
    }
    const bool is_dir = S_ISDIR(st.st_mode);
    if (excluded(name, is_dir)) continue;
    const std::string child_rel = rel + name;
    if (is_dir) {
      const fs::path via = is_link ? p : ancestors.back().via_link;
      for (const auto& a : ancestors)
        if (a.dev == st.st_dev && a.ino == st.st_ino) {
          std::string msg = "symlink loop at " + describe_link(via.empty() ? p : via) + ": ";
          if (via != p) msg += p.string() + " is ";
          throw PackageError(msg + "the directory " + a.path.string() + " again");
        }
      ancestors.push_back({st.st_dev, st.st_ino, p, via});
      walk(p, child_rel + "/", ancestors, out);
      ancestors.pop_back();
    } else if (S_ISREG(st.st_mode)) {
      if (::access(p.c_str(), R_OK) != 0)
        throw PackageError("cannot read " + p.string() + ": " + std::strerror(errno));
      out.push_back({child_rel, p, (st.st_mode & 0111) != 0, static_cast<std::uint64_t>(st.st_size)});
    } else {
      throw PackageError(p.string() + " is not a regular file or a directory (sockets, fifos and devices cannot be packaged)");
    }
  }
  if (ec) throw PackageError("cannot read directory " + dir.string() + ": " + ec.message());
}

std::string normalize_prefix(std::string prefix) {
  if (prefix.empty()) return prefix;
  if (prefix.front() == '/' || prefix.find("..") != std::string::npos || prefix.find('\\') != std::string::npos)
    throw PackageError("zip prefix '" + prefix + "' must be a relative folder such as python/");
  if (prefix.back() != '/') prefix += '/';
  return prefix;
}

struct ZipCloser {
  void operator()(zip_t* z) const { zip_discard(z); }
};
struct SourceFree {
  void operator()(zip_source_t* s) const { zip_source_free(s); }
};

std::string read_all(zip_source_t* src) {
  if (zip_source_open(src) < 0) throw PackageError(std::string("cannot read the zip: ") + zip_error_strerror(zip_source_error(src)));
  std::string bytes;
  char buf[1 << 16];
  zip_int64_t n;
  while ((n = zip_source_read(src, buf, sizeof buf)) > 0) bytes.append(buf, static_cast<std::size_t>(n));
  zip_source_close(src);
  if (n < 0) throw PackageError(std::string("cannot read the zip: ") + zip_error_strerror(zip_source_error(src)));
  return bytes;
}

// Opens `bytes` read-only; the returned archive borrows them.
std::unique_ptr<zip_t, ZipCloser> open_read(const std::string& bytes) {
  zip_error_t err;
  zip_error_init(&err);
  zip_source_t* src = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &err);
  if (!src) throw PackageError(std::string("cannot read the zip: ") + zip_error_strerror(&err));
  zip_t* za = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &err);
  if (!za) {
    zip_source_free(src);
    std::string msg = std::string("not a valid zip: ") + zip_error_strerror(&err);
    zip_error_fini(&err);
    throw PackageError(msg);
  }
  return std::unique_ptr<zip_t, ZipCloser>(za);
}

}  // namespace

Archive zip_directory(const fs::path& dir, const std::string& prefix_in) {
  const std::string prefix = normalize_prefix(prefix_in);
  struct stat root {};
  if (::stat(dir.c_str(), &root) != 0) throw PackageError("cannot package " + dir.string() + ": " + std::strerror(errno));
  if (!S_ISDIR(root.st_mode)) throw PackageError("cannot package " + dir.string() + ": not a directory");
  std::vector<Entry> entries;
  std::vector<DirId> ancestors{{root.st_dev, root.st_ino, dir, {}}};
  walk(dir, prefix, ancestors, entries);
  if (entries.empty()) throw PackageError("nothing to package in " + dir.string() + ": it holds no files");
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });

  zip_error_t err;
  zip_error_init(&err);
  std::unique_ptr<zip_source_t, SourceFree> buffer(zip_source_buffer_create(nullptr, 0, 0, &err));
  if (!buffer) throw PackageError(std::string("libzip: ") + zip_error_strerror(&err));
  zip_t* za = zip_open_from_source(buffer.get(), ZIP_TRUNCATE, &err);
  if (!za) throw PackageError(std::string("libzip: ") + zip_error_strerror(&err));
  zip_source_keep(buffer.get());  // survives zip_close so that we can read the result
  std::unique_ptr<zip_t, ZipCloser> archive(za);

  Archive out;
  for (const auto& e : entries) {
    zip_source_t* src = zip_source_file_create(e.source.c_str(), 0, -1, &err);
    if (!src) throw PackageError("cannot read " + e.source.string() + ": " + zip_error_strerror(&err));
    zip_int64_t idx = zip_file_add(za, e.name.c_str(), src, ZIP_FL_ENC_GUESS);
    if (idx < 0) {
      zip_source_free(src);
      throw PackageError("cannot add " + e.name + " to the zip: " + zip_strerror(za));
    }
    const auto i = static_cast<zip_uint64_t>(idx);
    const std::uint32_t mode = S_IFREG | (e.executable ? kExecutableMode : kRegularMode);
    if (zip_set_file_compression(za, i, ZIP_CM_DEFLATE, kDeflateLevel) < 0 ||
        zip_file_set_dostime(za, i, kDosTime, kDosDate, 0) < 0 ||
        zip_file_set_external_attributes(za, i, 0, ZIP_OPSYS_UNIX, mode << 16) < 0)
      throw PackageError("cannot set the attributes of " + e.name + ": " + zip_strerror(za));
    out.unzipped_size += e.size;
  }
  if (zip_close(za) < 0) {
    // zip_close reads every file now; its message names the one that failed.
    throw PackageError("cannot write the zip of " + dir.string() + ": " + zip_strerror(za));
  }
  archive.release();  // zip_close freed it
  out.bytes = read_all(buffer.get());
  out.files = entries.size();
  out.sha256_hex = detail::sha256_hex(out.bytes);
  out.sha256_b64 = detail::sha256_base64(out.bytes);
  return out;
}

Archive describe_zip(std::string bytes) {
  Archive out;
  {
    auto za = open_read(bytes);
    const zip_int64_t n = zip_get_num_entries(za.get(), 0);
    for (zip_int64_t i = 0; i < n; ++i) {
      zip_stat_t st;
      zip_stat_init(&st);
      if (zip_stat_index(za.get(), static_cast<zip_uint64_t>(i), 0, &st) < 0) throw PackageError(std::string("not a valid zip: ") + zip_strerror(za.get()));
      std::string name = st.name ? st.name : "";
      if (!name.empty() && name.back() == '/') continue;
      out.unzipped_size += st.size;
      ++out.files;
    }
  }
  out.sha256_hex = detail::sha256_hex(bytes);
  out.sha256_b64 = detail::sha256_base64(bytes);
  out.bytes = std::move(bytes);
  return out;
}

std::vector<ZipEntry> list_zip(const std::string& bytes) {
  auto za = open_read(bytes);
  std::vector<ZipEntry> out;
  const zip_int64_t n = zip_get_num_entries(za.get(), 0);
  for (zip_int64_t i = 0; i < n; ++i) {
    const auto idx = static_cast<zip_uint64_t>(i);
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(za.get(), idx, 0, &st) < 0) throw PackageError(std::string("not a valid zip: ") + zip_strerror(za.get()));
    ZipEntry e;
    e.name = st.name ? st.name : "";
    e.size = st.size;
    e.compressed_size = st.comp_size;
    e.compression = st.comp_method;
    zip_uint32_t attr = 0;
    zip_file_get_external_attributes(za.get(), idx, 0, &e.opsys, &attr);
    e.mode = attr >> 16;
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace sluice::package
