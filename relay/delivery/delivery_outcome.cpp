// Classification of upstream transaction results; see delivery_outcome.hpp.
#include "relay/delivery/delivery_outcome.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "relay/delivery/account_hold.hpp"
#include "relay/smtp/replies.hpp"

namespace relay {
namespace {

// One verdict for a set of recipients, from the one table in account_hold.hpp.
void judge(Outcome& out, const smtp::Reply& r, const std::vector<std::string>& rcpts) {
    switch (scope_of(r)) {
    case ReplyScope::hold_account:
        if (!out.hold) out.hold = r;
        out.retry.insert(out.retry.end(), rcpts.begin(), rcpts.end());
        return;
    case ReplyScope::retry:
    case ReplyScope::delivered:   // a positive reply where a refusal was expected: try again
        if (!out.first_transient) out.first_transient = r;
        out.retry.insert(out.retry.end(), rcpts.begin(), rcpts.end());
        return;
    case ReplyScope::deny_sender:
        if (!out.sender_denied) out.sender_denied = r;
        [[fallthrough]];
    case ReplyScope::fail_message:
        if (!out.first_permanent) out.first_permanent = r;
        for (const auto& rcpt : rcpts) out.failed.push_back({rcpt, status_of_reply(r.text()), r.text()});
        return;
    }
}

}  // namespace

void Outcome::add(const std::vector<std::string>& chunk, const TransactionResult& result) {
    for (const auto& [rcpt, r] : result.rejected) judge(*this, r, {rcpt});
    const smtp::Reply& reply = result.final_reply;
    if (result.data_sent && reply.positive()) {
        delivered.insert(delivered.end(), result.accepted.begin(), result.accepted.end());
        last_ok = reply;
    } else if (result.data_sent) {
        judge(*this, reply, result.accepted);
    } else if (result.rejected.empty()) {
        judge(*this, reply, chunk);   // MAIL FROM refused: the verdict applies to the whole chunk
    }
}

void Outcome::not_attempted(const std::vector<std::string>& chunk) {
    if (sender_denied && !hold && io_error.empty()) {
        for (const auto& rcpt : chunk)
            failed.push_back({rcpt, status_of_reply(sender_denied->text()), sender_denied->text()});
        return;
    }
    retry.insert(retry.end(), chunk.begin(), chunk.end());
}

std::vector<std::vector<std::string>> split_recipients(const std::vector<std::string>& rcpts, std::size_t per) {
    per = std::max<std::size_t>(per, 1);
    std::vector<std::vector<std::string>> chunks;
    for (std::size_t first = 0; first < rcpts.size(); first += per)
        chunks.emplace_back(rcpts.begin() + first, rcpts.begin() + std::min(rcpts.size(), first + per));
    return chunks;
}

std::string reply_line(const smtp::Reply& reply) {
    std::string text = reply.lines.empty() ? std::string() : reply.lines.front();
    if (reply.enhanced().empty())
        text = std::string(smtp::replies::class_enhanced_code(reply.code)) + " " + text;
    return fmt::format("{} {}", reply.code, text);
}

}  // namespace relay
