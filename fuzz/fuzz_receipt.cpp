// Receipts (pull ack/nack/extend) and entry references ("<partition>:<ms>-<seq>").
// Random text almost never carries a valid tag, so the second half signs the fuzz input
// with the key: the field parsing behind the HMAC check is reached too.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "mq/consume/entry_ref.hpp"
#include "mq/consume/pull.hpp"
#include "mq/core/codec.hpp"
#include "mq/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::string kKey = "fuzz-receipt-key-0123456789abcdef";
    std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        mq::decode_receipt(text, kKey, "sub-1");
    } catch (const mq::Error&) {
    }
    try {
        std::string body(text);
        std::string signed_text =
            mq::codec::base64url_encode(body + mq::codec::hmac_sha256(kKey, body));
        mq::Receipt r = mq::decode_receipt(signed_text, kKey, "sub-1");
        // What decodes must encode back to a receipt that decodes the same.
        mq::Receipt again = mq::decode_receipt(mq::encode_receipt(r, kKey), kKey, "sub-1");
        if (again.partition != r.partition || again.stream_id != r.stream_id ||
            again.delivery_count != r.delivery_count)
            __builtin_trap();
    } catch (const mq::Error&) {
    }
    try {
        mq::EntryRef ref = mq::parse_entry_ref(text, "mqctl pending");
        mq::entry_ref_text(ref.partition, ref.stream_id);
    } catch (const mq::Error&) {
    }
    return 0;
}
