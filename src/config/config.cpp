// config.h: the sections' own checks and the Config-level API (load, dump, atomic
// write into the run directory, docs).
// Must not: check individual keys (the visit lists and config_reflect.cpp do).
#include "zeroth/config.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "zeroth/error.h"

namespace zeroth {

// A failed POSIX call (returning < 0), reported with the path it was working on.
#define ZT_CHECK_SYS(call, path) \
  ZT_CHECK_LIB("system", call, zt_status_ >= 0, std::string(path) + ": " + std::strerror(errno))

void RunConfig::finalize() {
  const std::string placeholder = "<name>";
  for (size_t at = run_dir.find(placeholder); at != std::string::npos;
       at = run_dir.find(placeholder, at + name.size()))
    run_dir.replace(at, placeholder.size(), name);
}

void RunConfig::validate() const {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos)
    throw ConfigError(strformat("key 'run.name': expected a non-empty name without '/' (it names a "
                                "directory), found '%s'", name.c_str()));
  if (run_dir.empty())
    throw ConfigError("key 'run.run_dir': expected a directory, found ''");
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  return load_config_as<Config>(path, overrides);
}

std::string dump_config_yaml(const Config& config) {
  return "# Resolved zeroth configuration: every key, defaults included.\n" + dump_config_as(config);
}

void write_resolved_config(const Config& config, const std::string& run_dir) {
  std::error_code ec;
  std::filesystem::create_directories(run_dir, ec);
  if (ec)
    throw RuntimeError(strformat("cannot create run directory '%s': %s", run_dir.c_str(), ec.message().c_str()));
  const std::string text = dump_config_yaml(config);
  const std::string final_path = (std::filesystem::path(run_dir) / "config.yaml").string();
  const std::string tmp_path = final_path + strformat(".tmp.%ld", static_cast<long>(::getpid()));
  int fd = -1;
  try {
    ZT_CHECK_SYS(fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), tmp_path);
    size_t done = 0;
    while (done < text.size()) {
      ssize_t n = ::write(fd, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      ZT_CHECK_SYS(n, tmp_path);
      done += static_cast<size_t>(n);
    }
    ZT_CHECK_SYS(::fsync(fd), tmp_path);
    int closing = fd;
    fd = -1;
    ZT_CHECK_SYS(::close(closing), tmp_path);
    ZT_CHECK_SYS(::rename(tmp_path.c_str(), final_path.c_str()), final_path);
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp_path.c_str());
    throw;
  }
}

std::string config_docs_markdown() { return config_docs_markdown_as<Config>(); }

}  // namespace zeroth
