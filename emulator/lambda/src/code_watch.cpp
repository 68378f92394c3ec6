#include "sluice/lambda/code_watch.hpp"

#include "sluice/common/log.hpp"
#include "sluice/lambda/versions.hpp"

#include <boost/asio/posix/stream_descriptor.hpp>
#include <sys/inotify.h>
#include <unistd.h>

#include <map>
#include <set>

namespace sluice::lambda {

namespace fs = std::filesystem;

struct CodeWatch::Impl : std::enable_shared_from_this<Impl> {
  Impl(boost::asio::any_io_executor ex, Callback cb) : fd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)), on_change(std::move(cb)) {
    if (fd >= 0) desc = std::make_unique<boost::asio::posix::stream_descriptor>(ex, fd);
  }
  ~Impl() {
    if (desc) {
      boost::system::error_code ignored;
      desc->close(ignored);
    }
  }

  int fd;
  std::unique_ptr<boost::asio::posix::stream_descriptor> desc;
  Callback on_change;
  struct Watch {
    fs::path dir;
    fs::path root;       // the tree root or, for single files, the file itself
    bool single = false;
  };
  std::map<int, Watch> watches;
  std::map<fs::path, int> by_dir;
  bool armed = false;

  static constexpr std::uint32_t mask = IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM |
                                        IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;

  void add_dir(const fs::path& dir, const fs::path& root, bool single) {
    if (fd < 0) return;
    int wd = ::inotify_add_watch(fd, dir.c_str(), mask);
    if (wd < 0) {
      log::get("watch")->warn("cannot watch {}: {}", dir.string(), std::strerror(errno));
      return;
    }
    watches[wd] = Watch{dir, root, single};
    by_dir[dir] = wd;
  }

  void add_tree(const fs::path& root, const fs::path& dir) {
    add_dir(dir, root, false);
    std::error_code ec;
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
      if (!it->is_directory(ec) || it->is_symlink(ec)) continue;
      fs::path rel = fs::relative(it->path(), root, ec);
      if (ignored_path(rel) || it->path().filename() == "node_modules") continue;
      add_tree(root, it->path());
    }
  }

  void arm() {
    if (!desc || armed) return;
    armed = true;
    desc->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                     [w = weak_from_this()](boost::system::error_code ec) {
                       auto self = w.lock();
                       if (!self || ec) return;
                       self->armed = false;
                       self->drain();
                       self->arm();
                     });
  }

  void drain() {
    if (fd < 0) return;
    std::set<fs::path> changed;
    alignas(inotify_event) char buf[16384];
    while (true) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      for (char* p = buf; p < buf + n;) {
        auto* ev = reinterpret_cast<inotify_event*>(p);
        p += sizeof(inotify_event) + ev->len;
        auto it = watches.find(ev->wd);
        if (it == watches.end()) continue;
        const Watch& w = it->second;
        std::string name = ev->len ? std::string(ev->name) : std::string();
        if (w.single) {
          if (name == w.root.filename().string()) changed.insert(w.root);
          continue;
        }
        fs::path full = name.empty() ? w.dir : w.dir / name;
        std::error_code ec;
        fs::path rel = fs::relative(full, w.root, ec);
        if (!name.empty() && ignored_path(rel)) continue;
        if ((ev->mask & IN_ISDIR) && (ev->mask & (IN_CREATE | IN_MOVED_TO)) && name != "node_modules")
          add_tree(w.root, full);
        if (ev->mask & IN_IGNORED) {
          by_dir.erase(w.dir);
          watches.erase(it);
        }
        changed.insert(w.root);
      }
    }
    if (!changed.empty() && on_change) on_change(std::vector<fs::path>(changed.begin(), changed.end()));
  }
};

CodeWatch::CodeWatch(boost::asio::any_io_executor ex, Callback on_change)
    : impl_(std::make_shared<Impl>(ex, std::move(on_change))) {}
CodeWatch::~CodeWatch() = default;

void CodeWatch::watch_tree(const fs::path& root) {
  impl_->add_tree(root, root);
  impl_->arm();
}

void CodeWatch::watch_file(const fs::path& file) {
  impl_->add_dir(file.parent_path(), file, true);
  impl_->arm();
}

void CodeWatch::clear() {
  for (auto& [wd, w] : impl_->watches) ::inotify_rm_watch(impl_->fd, wd);
  impl_->watches.clear();
  impl_->by_dir.clear();
}

void CodeWatch::poll() { impl_->drain(); }
bool CodeWatch::active() const { return impl_->fd >= 0; }

}  // namespace sluice::lambda
