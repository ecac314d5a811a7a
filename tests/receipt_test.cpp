// Pull receipts: opaque, signed, bound to one subscription.
#include <catch2/catch.hpp>

#include "mq/consume/pull.hpp"

namespace {

const std::string kKey = "receipt-key-for-tests";
const std::string kSub = "0190a5c4-1111-7abc-8def-0123456789ab";

mq::Receipt sample() { return mq::Receipt{kSub, 3, "1700000000000-7", 2}; }

void check_invalid(const std::string& text, const std::string& sub = kSub) {
    try {
        mq::decode_receipt(text, kKey, sub);
        FAIL("accepted: " << text);
    } catch (const mq::ValidationError& e) {
        CHECK(std::string(e.what()) == "invalid receipt");
        CHECK(e.code() == mq::ErrorCode::kValidation);
    }
}

}  // namespace

TEST_CASE("a receipt decodes to the fields it was made from", "[receipt]") {
    std::string text = mq::encode_receipt(sample(), kKey);
    CHECK(text.find_first_not_of(
              "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
          std::string::npos);
    CHECK(text.find(kSub) == std::string::npos);  // opaque, not the fields in clear
    auto r = mq::decode_receipt(text, kKey, kSub);
    CHECK(r.subscription_id == kSub);
    CHECK(r.partition == 3);
    CHECK(r.stream_id == "1700000000000-7");
    CHECK(r.delivery_count == 2);
}

TEST_CASE("a receipt with any byte changed is invalid", "[receipt]") {
    std::string text = mq::encode_receipt(sample(), kKey);
    // The untouched receipt is valid, so every refusal below is the tampering's doing.
    REQUIRE(mq::decode_receipt(text, kKey, kSub).stream_id == sample().stream_id);
    for (std::size_t i = 0; i < text.size(); ++i) {
        std::string tampered = text;
        tampered[i] = tampered[i] == 'A' ? 'B' : 'A';
        check_invalid(tampered);
    }
    check_invalid(text.substr(0, text.size() - 1));
    check_invalid(text + "A");
}

TEST_CASE("a receipt made with another key or for another subscription is invalid", "[receipt]") {
    std::string text = mq::encode_receipt(sample(), kKey);
    check_invalid(text, "0190a5c4-2222-7abc-8def-0123456789ab");
    CHECK_THROWS_AS(mq::decode_receipt(text, "another-key", kSub), mq::ValidationError);
    // Another subscription's genuine receipt does not work here either.
    auto other = sample();
    other.subscription_id = "0190a5c4-2222-7abc-8def-0123456789ab";
    check_invalid(mq::encode_receipt(other, kKey));
}

TEST_CASE("garbage and empty receipts are invalid", "[receipt]") {
    check_invalid("");
    check_invalid("not a receipt");
    check_invalid("AAAA");
    check_invalid("====");
    check_invalid(std::string(5000, 'A'));
    check_invalid("eyJzdWIiOiIxIn0");
    CHECK_THROWS_AS(mq::encode_receipt(sample(), ""), mq::Error);
}
