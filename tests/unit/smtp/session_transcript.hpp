// The golden-transcript harness of the ServerSession tests (test_server_session.cpp,
// test_session_auth.cpp): "C:" lines are client input (each gets CRLF; consecutive C lines are sent
// as one read, like a pipelining client), "B:" lines are raw client bytes with C-style escapes and no
// CRLF added, "S:" lines are the exact replies, "[tls]"/"[close]" the I/O actions. The harness plays
// the I/O layer: it keeps unconsumed bytes, commits messages, drops input after STARTTLS and stops at
// close. Fake hooks and sink record what the session asked for.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "relay/smtp/server_session.hpp"

namespace session_testing {

using namespace relay::smtp;
using relay::Envelope;

struct FakeHooks : SessionHooks {
    std::map<std::string, std::pair<std::string, std::string>> users{{"alice", {"s3cret-pw", "acct-alice"}}};
    std::string refused_sender = "blocked@evil.test";
    std::vector<std::string> routes;   // "user|account|from" per call
    std::vector<std::string> notes;

    AuthResult authenticate(std::string_view user, std::string_view password) override {
        const auto it = users.find(std::string(user));
        if (it == users.end() || it->second.first != password) return {};
        return {true, it->second.second};
    }
    RouteResult route(std::string_view user, std::string_view user_account, std::string_view from) override {
        routes.push_back(std::string(user) + "|" + std::string(user_account) + "|" + std::string(from));
        if (from == refused_sender) return {false, "", "550 5.7.1 Sender not permitted"};
        return {true, user_account.empty() ? "default" : std::string(user_account), ""};
    }
    void note(std::string_view what, std::string_view detail) override {
        notes.push_back(std::string(what) + " " + std::string(detail));
    }
    std::vector<std::string> refusals;   // "command|reply|helo|from|to|argument"; from "-" when unknown
    void refused(const Refusal& r) override {
        refusals.push_back(std::string(r.command) + "|" + std::string(r.reply) + "|" + std::string(r.helo) + "|" +
                           (r.from ? std::string(*r.from) : "-") + "|" + std::string(r.to) + "|" +
                           std::string(r.argument));
    }
};

struct FakeSink : MessageSink {
    Envelope envelope;
    std::string body;
    std::vector<std::string> committed;   // bodies handed over for commit
    int begins = 0, aborts = 0;
    std::size_t writes = 0;
    bool throw_on_data = false;

    void message_begin(const Envelope& e) override {
        ++begins;
        envelope = e;
        body.clear();
    }
    void message_data(std::string_view bytes) override {
        if (throw_on_data) throw std::runtime_error("disk full");
        body.append(bytes);
        ++writes;
    }
    void message_abort() override { ++aborts; }
};

inline std::string unescape(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '\\' || i + 1 == s.size()) {
            out += s[i];
            continue;
        }
        const char c = s[++i];
        if (c == 'r') out += '\r';
        else if (c == 'n') out += '\n';
        else if (c == '0') out += '\0';
        else out += c;
    }
    return out;
}

struct Conversation {
    FakeHooks hooks;
    FakeSink sink;
    ServerSession session;
    std::string pending;       // bytes the session has not consumed yet
    std::string transcript;    // what happened, in golden format
    bool closed = false;
    int next_queue_id = 1;
    std::optional<std::string> commit_error;   // make the next commit fail with this reply

    explicit Conversation(SessionPolicy policy) : session(std::move(policy), hooks, sink, "192.0.2.7") {
        add_replies(session.greeting());
    }

    void add_replies(std::string_view replies) {
        std::size_t start = 0;
        while (start < replies.size()) {
            const std::size_t eol = replies.find("\r\n", start);
            ASSERT_NE(eol, std::string_view::npos) << "reply without CRLF: " << replies;
            transcript += "S: " + std::string(replies.substr(start, eol - start)) + "\n";
            start = eol + 2;
        }
    }

    // One read from the client.
    void send(std::string_view bytes) {
        ASSERT_FALSE(closed) << "client sent after close";
        pending.append(bytes);
        for (;;) {
            const ServerSession::Step step = session.feed(pending);
            ASSERT_LE(step.consumed, pending.size());
            pending.erase(0, step.consumed);
            add_replies(step.replies);
            if (step.next == ServerSession::Next::commit_message) {
                sink.committed.push_back(sink.body);
                if (commit_error) {
                    add_replies(session.commit_finished(std::nullopt, *commit_error));
                    commit_error.reset();
                } else {
                    add_replies(session.commit_finished("Q" + std::to_string(next_queue_id++)));
                }
                if (pending.empty()) return;
                continue;   // pipelined commands after the end of data
            }
            if (step.next == ServerSession::Next::start_tls) {
                transcript += "S: [tls]\n";
                pending.clear();   // never execute plaintext bytes after STARTTLS
                session.tls_started();
                return;
            }
            if (step.next == ServerSession::Next::close) {
                transcript += "S: [close]\n";
                closed = true;
                return;
            }
            return;
        }
    }
};

// Runs a golden transcript and returns what actually happened in the same format.
inline std::string play(Conversation& conv, std::string_view golden) {
    std::istringstream in{std::string(golden)};
    std::string line, batch, echo;
    auto flush = [&] {
        if (echo.empty()) return;
        conv.transcript += echo;
        conv.send(batch);
        batch.clear();
        echo.clear();
    };
    while (std::getline(in, line)) {
        if (line == "C:") line = "C: ";   // an empty client line
        if (line.rfind("C: ", 0) == 0) {
            batch += line.substr(3) + "\r\n";
            echo += line + "\n";
        } else if (line.rfind("B: ", 0) == 0) {
            batch += unescape(line.substr(3));
            echo += line + "\n";
        } else if (line.rfind("S: ", 0) == 0) {
            flush();
        }
    }
    flush();
    return conv.transcript;
}

inline std::string normalized(std::string_view golden) {
    std::istringstream in{std::string(golden)};
    std::string line, out;
    while (std::getline(in, line))
        if (line == "C:") out += "C: \n";
        else if (line.rfind("C: ", 0) == 0 || line.rfind("B: ", 0) == 0 || line.rfind("S: ", 0) == 0) out += line + "\n";
    return out;
}

// RFC 2034/3463: every 2xx/4xx/5xx reply carries an enhanced code, except the greeting and EHLO/HELO.
inline void expect_enhanced_codes(const std::string& transcript) {
    std::istringstream in(transcript);
    std::string line;
    bool after_hello = false;
    while (std::getline(in, line)) {
        if (line.rfind("C: ", 0) == 0 || line.rfind("B: ", 0) == 0) {
            const std::string verb = line.substr(3, 4);
            after_hello = verb == "EHLO" || verb == "HELO" || verb == "ehlo" || verb == "helo";
            continue;
        }
        if (line.rfind("S: [", 0) == 0 || line.size() < 7) continue;
        const std::string reply = line.substr(3);
        if (reply[0] == '3' || reply.rfind("220 mx.test ESMTP", 0) == 0) continue;
        if (after_hello && reply[0] == '2') continue;
        const char c = reply[4];
        EXPECT_TRUE(reply.size() > 9 && c == reply[0] && reply[5] == '.') << "no enhanced code: " << reply;
    }
}

inline SessionPolicy base_policy() {
    SessionPolicy p;
    p.hostname = "mx.test";
    p.max_message_size = 1000;
    p.max_recipients = 3;
    p.max_errors = 10;
    return p;
}

inline void expect_golden(Conversation& conv, std::string_view golden) {
    const std::string actual = play(conv, golden);
    EXPECT_EQ(actual, normalized(golden));
    expect_enhanced_codes(actual);
}

inline constexpr std::string_view kEhloReply = R"(S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 1000
S: 250-8BITMIME
S: 250-ENHANCEDSTATUSCODES
S: 250 AUTH PLAIN LOGIN
)";

}  // namespace session_testing
