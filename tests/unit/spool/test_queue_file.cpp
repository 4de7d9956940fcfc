// The queue file's header (relay/spool/queue_file): the record table writes and reads every
// envelope field, the size digits sit where the writer will put them, and records a newer version
// may add are skipped.
#include <gtest/gtest.h>

#include "relay/spool/queue_file.hpp"

namespace {

using namespace relay;

QueuedMessage sample() {
    QueuedMessage m;
    m.id = "0123456789ABCDEF";
    m.envelope.account = "office";
    m.envelope.mail_from = "a@contoso.com";
    m.envelope.rcpt_to = {"b@example.com", "c@example.com"};
    m.envelope.user = "scanner";
    m.envelope.client_address = "10.0.0.5";
    m.envelope.helo = "printer.lan";
    m.envelope.eight_bit = true;
    m.envelope.dsn = true;
    m.received = SystemClock::time_point(std::chrono::milliseconds(1700000000123));
    return m;
}

TEST(QueueFile, HeaderRoundTripsThroughTheRecordTable) {
    std::uint64_t size_offset = 0;
    std::string header = queue_file::format_header(sample(), size_offset);
    const std::string digits = queue_file::format_size(42);
    ASSERT_EQ(digits.size(), static_cast<std::size_t>(queue_file::kSizeDigits));
    EXPECT_EQ(header.substr(size_offset, digits.size()), std::string(digits.size(), '0'));
    header.replace(size_offset, digits.size(), digits);
    const QueuedMessage back = queue_file::parse_header(header + "body");
    EXPECT_EQ(back.id, "0123456789ABCDEF");
    EXPECT_EQ(back.size, 42u);
    EXPECT_EQ(back.body_offset, header.size());
    EXPECT_EQ(back.envelope.account, "office");
    EXPECT_EQ(back.envelope.mail_from, "a@contoso.com");
    EXPECT_EQ(back.envelope.rcpt_to, (std::vector<std::string>{"b@example.com", "c@example.com"}));
    EXPECT_EQ(back.envelope.user, "scanner");
    EXPECT_EQ(back.envelope.client_address, "10.0.0.5");
    EXPECT_EQ(back.envelope.helo, "printer.lan");
    EXPECT_TRUE(back.envelope.eight_bit);
    EXPECT_TRUE(back.envelope.dsn);
    EXPECT_EQ(back.received, sample().received);
}

TEST(QueueFile, TheTableNamesTheRecordsInFileOrder) {
    EXPECT_EQ(queue_file::record_names(),
              (std::vector<std::string_view>{"size", "body", "id", "account", "from", "rcpt", "user", "client", "helo",
                                             "received", "8bit", "dsn"}));
    std::uint64_t offset = 0;
    QueuedMessage plain = sample();
    plain.envelope.user.clear();
    plain.envelope.helo.clear();
    plain.envelope.dsn = false;
    const std::string header = queue_file::format_header(plain, offset);
    EXPECT_EQ(header.find("\nuser "), std::string::npos);   // optional records are left out when empty
    EXPECT_EQ(header.find("\nhelo "), std::string::npos);
    EXPECT_EQ(header.find("\ndsn "), std::string::npos);
    EXPECT_TRUE(header.starts_with(std::string(queue_file::kMagic) + "size 0000"));
    EXPECT_TRUE(header.ends_with("8bit 1\n\n"));
}

// What SpoolWriter saw in the body is patched in after it, next to the size: fixed width, at a
// fixed distance from the size digits.
TEST(QueueFile, BodyTraitsSitAfterTheSizeAndRoundTrip) {
    std::uint64_t size_offset = 0;
    std::string header = queue_file::format_header(sample(), size_offset);
    const std::uint64_t at = queue_file::body_traits_offset(size_offset);
    EXPECT_EQ(header.substr(at, 19), "8bit=0 longlines=0\n");
    QueuedMessage seen = sample();
    seen.eight_bit_data = true;
    seen.long_lines = true;
    const std::string traits = queue_file::format_body_traits(seen);
    ASSERT_EQ(traits.size(), 18u);
    header.replace(at, traits.size(), traits);
    const QueuedMessage back = queue_file::parse_header(header);
    EXPECT_TRUE(back.eight_bit_data);
    EXPECT_TRUE(back.long_lines);
    // A file written before the record existed reads as "nothing seen".
    std::string old = header;
    old.erase(old.find("body "), 24);
    const QueuedMessage before = queue_file::parse_header(old);
    EXPECT_FALSE(before.eight_bit_data);
    EXPECT_FALSE(before.long_lines);
}

TEST(QueueFile, UnknownRecordsAreSkippedAndBrokenHeadersRefused) {
    std::uint64_t offset = 0;
    std::string header = queue_file::format_header(sample(), offset);
    header.insert(header.find("account "), "priority high\n");
    EXPECT_EQ(queue_file::parse_header(header).envelope.account, "office");
    EXPECT_THROW(queue_file::parse_header("not a spool file\n\n"), std::runtime_error);
    EXPECT_THROW(queue_file::parse_header(std::string(queue_file::kMagic) + "size 1\n"), std::runtime_error);
    EXPECT_THROW(queue_file::parse_header(std::string(queue_file::kMagic) + "size 1\nid X\n\n"), std::runtime_error);
}

}  // namespace
