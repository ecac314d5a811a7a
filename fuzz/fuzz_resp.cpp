// RESP replies from a Redis server (or anything that answers on its port), through the
// hiredis reader mq's async connection uses and our conversion into mq::redis::Reply.
#include <hiredis/hiredis.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "mq/error.hpp"
#include "mq/redis/client.hpp"

namespace {

struct ReaderDeleter {
    void operator()(redisReader* r) const { redisReaderFree(r); }
};

// Uses every accessor the command layer uses; errors are mq::Error.
void walk(const mq::redis::Reply& r, int depth) {
    if (depth > 1000) __builtin_trap();
    (void)r.error_code();
    try {
        (void)r.as_integer();
    } catch (const mq::Error&) {
    }
    try {
        (void)r.as_string();
    } catch (const mq::Error&) {
    }
    for (const auto& e : r.elements) walk(e, depth + 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::unique_ptr<redisReader, ReaderDeleter> reader(redisReaderCreate());
    mq::redis::cap_reply_arrays(reader.get());  // as every reader of mq
    // Fed in two pieces: replies split across reads are the normal case on a socket.
    std::size_t half = size / 2;
    const char* bytes = reinterpret_cast<const char*>(data);
    for (auto [from, n] : {std::pair{std::size_t{0}, half}, std::pair{half, size - half}}) {
        if (redisReaderFeed(reader.get(), bytes + from, n) != REDIS_OK) return 0;
        for (int i = 0; i < 10000; ++i) {
            void* raw = nullptr;
            if (redisReaderGetReply(reader.get(), &raw) != REDIS_OK) return 0;
            if (!raw) break;
            std::unique_ptr<redisReply, decltype(&freeReplyObject)> owned(
                static_cast<redisReply*>(raw), &freeReplyObject);
            walk(mq::redis::reply_from_hiredis(raw), 0);
        }
    }
    return 0;
}
