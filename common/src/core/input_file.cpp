#include "mq/core/input_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "mq/error.hpp"

namespace mq {

namespace {

// Closes the descriptor whatever happens.
struct Fd {
    int fd = -1;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};

}  // namespace

std::string read_input_file(const std::string& path, std::string_view what, std::size_t max_bytes) {
    const std::string field(what);
    auto fail = [&](const std::string& why, bool too_large = false) -> std::string {
        std::string where = path == "-" ? "" : " '" + printable(path) + "'";
        nlohmann::json details{{"field", field}};
        if (too_large) details["limit"] = max_bytes;  // callers may answer "too large"
        throw ValidationError("cannot read " + field + where + ": " + why, std::move(details));
    };
    if (path.empty()) return fail("no file name given");
    // O_NONBLOCK: opening a FIFO without a writer must not hang; cleared below for reads.
    Fd f{path == "-" ? ::dup(STDIN_FILENO)
                     : ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)};
    if (f.fd < 0) return fail(std::strerror(errno));
    struct stat st {};
    if (::fstat(f.fd, &st) != 0) return fail(std::strerror(errno));
    if (S_ISDIR(st.st_mode)) return fail("it is a directory, not a file");
    if (path != "-") {
        int flags = ::fcntl(f.fd, F_GETFL);
        if (flags >= 0) ::fcntl(f.fd, F_SETFL, flags & ~O_NONBLOCK);
    }
    if (S_ISREG(st.st_mode) && static_cast<std::uintmax_t>(st.st_size) > max_bytes)
        return fail("it is " + std::to_string(st.st_size) + " bytes, over the limit of " +
                        std::to_string(max_bytes),
                    true);

    std::string out;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(f.fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail(std::strerror(errno));
        }
        if (n == 0) break;
        if (out.size() + static_cast<std::size_t>(n) > max_bytes)
            return fail("it is over the limit of " + std::to_string(max_bytes) + " bytes", true);
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

}  // namespace mq
