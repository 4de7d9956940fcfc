#include <utility>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "relay/spool/queue_state.hpp"
#include "relay/spool/spool.hpp"

namespace fs = std::filesystem;
namespace asio = boost::asio;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        path = fs::temp_directory_path() / ("spool-test-" + relay::make_queue_id());
        fs::create_directories(path);
    }
    ~TempDir() { fs::remove_all(path); }
};

relay::Envelope sample_envelope() {
    relay::Envelope e;
    e.mail_from = "app@example.com";
    e.rcpt_to = {"a@example.com", "b@example.com"};
    e.account = "office";
    e.user = "scanner";
    e.client_address = "127.0.0.1";
    e.helo = "printer.local";
    e.protocol = "ESMTPA";
    e.eight_bit = true;
    return e;
}

std::string read_body(const relay::QueuedMessage& m) {
    relay::SpoolBodyReader reader(m);
    std::string body;
    char buf[7];  // small on purpose: many read() calls
    while (std::size_t n = reader.read(buf, sizeof buf)) body.append(buf, n);
    return body;
}

// Writes and commits one message through the real committer; returns it as queued.
relay::QueuedMessage spool_message(relay::Spool& spool, const std::string& body, relay::TraceOptions trace = {},
                                   std::size_t chunk = 1000) {
    asio::io_context io;
    asio::thread_pool pool(1);
    relay::SpoolCommitter committer(spool, io.get_executor(), pool);
    relay::SpoolWriter writer(spool, trace);
    writer.message_begin(sample_envelope());
    for (std::size_t i = 0; i < body.size(); i += chunk) writer.message_data(std::string_view(body).substr(i, chunk));
    auto [pending, queued] = writer.finish();
    bool committed = false;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        co_await committer.commit(pending);
        committed = true;
    }, asio::detached);
    io.run();
    pool.join();
    EXPECT_TRUE(committed);
    return queued;
}

}  // namespace

TEST(Spool, CommittedMessageReadsBackExactly) {
    TempDir dir;
    relay::Spool spool(dir.path);
    std::string body;
    for (int i = 0; i < 5000; ++i) body += "line " + std::to_string(i) + " \xc3\xa9t\xc3\xa9\r\n";
    auto queued = spool_message(spool, body);

    EXPECT_TRUE(fs::exists(spool.queue_dir() / queued.id));
    EXPECT_TRUE(fs::is_empty(spool.incoming_dir()));
    auto back = relay::Spool::read(spool.queue_dir() / queued.id);
    EXPECT_EQ(back.id, queued.id);
    EXPECT_EQ(back.envelope.mail_from, "app@example.com");
    EXPECT_EQ(back.envelope.rcpt_to, (std::vector<std::string>{"a@example.com", "b@example.com"}));
    EXPECT_EQ(back.envelope.account, "office");
    EXPECT_EQ(back.envelope.user, "scanner");
    EXPECT_EQ(back.envelope.helo, "printer.local");
    EXPECT_TRUE(back.envelope.eight_bit);
    EXPECT_EQ(back.size, body.size());
    EXPECT_EQ(read_body(back), body);
    EXPECT_EQ(fs::status(back.path).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
}

// The writer's trace header and body scan (issue 11 items 1 and 2): the Received field is the first
// line of the stored message and counts in its size; what the scan saw survives a re-read, even when
// a long line or an 8-bit byte arrives split over chunks.
TEST(Spool, TraceHeaderAndBodyScanAreStoredWithTheMessage) {
    TempDir dir;
    relay::Spool spool(dir.path);
    const std::string plain = "Subject: x\r\n\r\nshort\r\n";
    auto untouched = relay::Spool::read(spool.queue_dir() / spool_message(spool, plain).id);
    EXPECT_EQ(read_body(untouched), plain);
    EXPECT_FALSE(untouched.eight_bit_data);
    EXPECT_FALSE(untouched.long_lines);

    const std::string body = "Subject: y\r\n\r\n" + std::string(1500, 'a') + "\r\ncaf\xc3\xa9\r\n";
    auto queued = spool_message(spool, body, relay::TraceOptions{true, "relay.contoso.com"});
    auto back = relay::Spool::read(spool.queue_dir() / queued.id);
    const std::string stored = read_body(back);
    ASSERT_TRUE(stored.starts_with("Received: from printer.local ([127.0.0.1])\r\n\tby relay.contoso.com "
                                   "(smtp-oauth2-relay) with "));
    EXPECT_NE(stored.find(" id " + queued.id + ";"), std::string::npos);
    EXPECT_TRUE(stored.ends_with(body));
    EXPECT_EQ(back.size, stored.size());
    EXPECT_TRUE(back.eight_bit_data);
    EXPECT_TRUE(back.long_lines);

    // 998 octets of text is the most RFC 5321 allows, and no long line.
    auto limit = relay::Spool::read(spool.queue_dir() / spool_message(spool, std::string(998, 'b') + "\r\n").id);
    EXPECT_FALSE(limit.long_lines);
    EXPECT_FALSE(limit.eight_bit_data);
    auto over = relay::Spool::read(spool.queue_dir() / spool_message(spool, std::string(999, 'b') + "\r\n").id);
    EXPECT_TRUE(over.long_lines);
}

// A message that is all body (a script's bare text, no header at all) gets an empty line after the
// Received field, else its first line would be read as a broken header field and vanish from view.
TEST(Spool, TraceHeaderIsSeparatedFromAMessageWithoutHeader) {
    TempDir dir;
    relay::Spool spool(dir.path);
    const relay::TraceOptions trace{true, "relay.contoso.com"};
    const auto stored = [&](const std::string& body, std::size_t chunk) {
        auto back = relay::Spool::read(spool.queue_dir() / spool_message(spool, body, trace, chunk).id);
        std::string text = read_body(back);
        EXPECT_EQ(back.size, text.size());
        return text.substr(text.find("\r\n", text.find(" +0000")) + 2);   // what follows the Received field
    };
    for (std::size_t chunk : {1, 3, 1000}) {
        EXPECT_EQ(stored("hello world\r\n", chunk), "\r\nhello world\r\n") << chunk;
        EXPECT_EQ(stored(" indented\r\n", chunk), "\r\n indented\r\n") << chunk;
        EXPECT_EQ(stored("Subject: x\r\n\r\nbody\r\n", chunk), "Subject: x\r\n\r\nbody\r\n") << chunk;
        EXPECT_EQ(stored("\r\nbody\r\n", chunk), "\r\nbody\r\n") << chunk;
    }
    const std::string html = "<html>" + std::string(3000, 'h') + "\r\n";
    EXPECT_EQ(stored(html, 1000), "\r\n" + html);
    EXPECT_EQ(stored(std::string(2000, 'a') + "\r\n", 1000), "\r\n" + std::string(2000, 'a') + "\r\n");
}

TEST(Spool, RecoverSkipsTornFilesAndDropsUnacknowledgedOnes) {
    TempDir dir;
    relay::Spool spool(dir.path);
    auto good = spool_message(spool, "Subject: one\r\n\r\nbody\r\n");
    auto torn = spool_message(spool, "Subject: two\r\n\r\nbody that will be cut\r\n");
    fs::resize_file(torn.path, fs::file_size(torn.path) - 5);
    std::ofstream(spool.incoming_dir() / "ABANDONED") << "half a message";

    auto recovered = spool.recover();
    ASSERT_EQ(recovered.size(), 1u);
    EXPECT_EQ(recovered[0].id, good.id);
    EXPECT_TRUE(fs::exists(spool.failed_dir() / torn.id));
    std::ifstream reason(spool.failed_dir() / (torn.id + ".reason"));
    std::stringstream text;
    text << reason.rdbuf();
    EXPECT_NE(text.str().find("torn file"), std::string::npos) << text.str();
    EXPECT_TRUE(fs::is_empty(spool.incoming_dir()));
}

TEST(Spool, AbortLeavesNothingBehind) {
    TempDir dir;
    relay::Spool spool(dir.path);
    {
        relay::SpoolWriter writer(spool);
        writer.message_begin(sample_envelope());
        writer.message_data("partial");
        writer.message_abort();
        EXPECT_FALSE(writer.active());
    }
    EXPECT_TRUE(fs::is_empty(spool.incoming_dir()));
    EXPECT_TRUE(fs::is_empty(spool.queue_dir()));
}

TEST(Spool, ConcurrentCommitsShareBatches) {
    TempDir dir;
    relay::Spool spool(dir.path);
    asio::io_context io;
    asio::thread_pool pool(1);
    relay::SpoolCommitter committer(spool, io.get_executor(), pool);
    constexpr int kMessages = 40;
    std::vector<std::unique_ptr<relay::SpoolWriter>> writers;
    int committed = 0;
    for (int i = 0; i < kMessages; ++i) {
        writers.push_back(std::make_unique<relay::SpoolWriter>(spool));
        writers.back()->message_begin(sample_envelope());
        writers.back()->message_data("Subject: " + std::to_string(i) + "\r\n\r\nx\r\n");
        auto [pending, queued] = writers.back()->finish();
        asio::co_spawn(io, [&, p = pending]() -> asio::awaitable<void> {
            co_await committer.commit(p);
            ++committed;
        }, asio::detached);
    }
    io.run();
    pool.join();
    EXPECT_EQ(committed, kMessages);
    EXPECT_LT(committer.batches(), static_cast<std::uint64_t>(kMessages));  // group commit happened
    EXPECT_EQ(spool.recover().size(), static_cast<std::size_t>(kMessages));
}

TEST(Spool, QueueIdsAreUniqueAndFixedWidth) {
    std::string previous;
    for (int i = 0; i < 1000; ++i) {
        std::string id = relay::make_queue_id();
        ASSERT_EQ(id.size(), 16u);
        ASSERT_NE(id, previous);
        previous = id;
    }
}

TEST(Spool, DeliveredFileIsRecycledAndCutToTheNextMessagesLength) {
    TempDir dir;
    relay::Spool spool(dir.path);
    auto first = spool_message(spool, std::string(20000, 'a') + "\r\n");
    spool.remove(first);
    EXPECT_FALSE(fs::exists(first.path));
    EXPECT_TRUE(fs::exists(spool.recycled_dir() / first.id));

    // The next message reuses that file (no new inode) and is shorter: nothing of the old one remains.
    auto second = spool_message(spool, "short\r\n");
    EXPECT_TRUE(fs::is_empty(spool.recycled_dir()));
    auto back = relay::Spool::read(spool.queue_dir() / second.id);
    EXPECT_EQ(read_body(back), "short\r\n");
    EXPECT_EQ(fs::file_size(back.path), back.body_offset + back.size);

    // A recycled file left by an earlier run is reused too.
    spool.remove(back);
    relay::Spool restarted(dir.path);
    auto third = spool_message(restarted, "third\r\n");
    EXPECT_TRUE(fs::is_empty(restarted.recycled_dir()));
    EXPECT_EQ(read_body(relay::Spool::read(restarted.queue_dir() / third.id)), "third\r\n");
}

// Issue 13, item 10: a deferred message's queue/<ID>.state (and a .hold) stayed behind forever once
// the message was delivered, because a recycled file skipped the sidecar cleanup.
TEST(Spool, SidecarsGoWithTheirMessageRecycledOrDeleted) {
    TempDir dir;
    relay::Spool spool(dir.path);
    for (std::size_t size : {std::size_t{100}, std::size_t{2 * 1024 * 1024}}) {
        auto message = spool_message(spool, std::string(size, 'c'));
        relay::MessageState state;
        state.attempts = 2;
        relay::write_state(message.path, state);
        std::ofstream(relay::hold_path(message.path)) << "held\n";
        ASSERT_TRUE(fs::exists(relay::state_path(message.path)));
        spool.remove(message);
        EXPECT_FALSE(fs::exists(relay::state_path(message.path))) << size;
        EXPECT_FALSE(fs::exists(relay::hold_path(message.path))) << size;
    }
    for (const auto& entry : fs::directory_iterator(spool.queue_dir())) ADD_FAILURE() << entry.path();
}

TEST(Spool, LargeDeliveredFilesAreDeletedNotRecycled) {
    TempDir dir;
    relay::Spool spool(dir.path);
    auto big = spool_message(spool, std::string(2 * 1024 * 1024, 'b'));
    spool.remove(big);
    EXPECT_FALSE(fs::exists(big.path));
    EXPECT_TRUE(fs::is_empty(spool.recycled_dir()));
}
