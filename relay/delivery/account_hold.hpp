// What one upstream reply is about, and so what it may stop (issue 11 item 3): one message, one
// sender, or the whole account. Exchange Online answers repeated permanent errors with
// continuous-error throttling of the mailbox (PROVIDERS.md), so the relay must neither resend a
// refused message nor stop a mailbox's good mail because of one bad message:
//   - replies about a message or its recipients (5.1.x, 5.3.4 size, 5.6.x content, any other plain
//     5xx) fail that message (failed/, DSN when bounce = true); the account goes on;
//   - SendAs refusals (5.2.252 SendAsDenied, 5.7.60) are about one sender: the message fails, and
//     later messages from that sender fail at once for a while (denied_senders.hpp) instead of
//     asking Exchange again and again;
//   - account-level causes need a person and hold the account: SMTP AUTH disabled (5.7.139) and the
//     5.2.251-5.2.255 continuous-error family (5.2.252 excepted: SendAsDenied names one sender).
//     Token causes (invalid_grant, invalid_client, consent missing) hold through AccountFailure
//     (auth::needs_person), Graph's 403 ErrorAccessDenied through graph::Verdict::hold.
// The hold lasts until the cause may have changed: a config reload, a new token file, `queue retry`.
// Pure, so the table is unit-tested.
#pragma once

#include <optional>
#include <string>

#include "relay/smtp/reply.hpp"

namespace relay {

enum class ReplyScope {
    delivered,        // 2xx/3xx: accepted
    retry,            // 4xx, no reply at all, or a "permanent" reply that is temporary in fact (quota)
    fail_message,     // 5xx about this message or recipient
    deny_sender,      // 5xx SendAs refusal: fail the message and remember the sender
    hold_account,     // a person must act: nothing more is sent through the account
};

// Exchange Online's daily recipient quota (10,000 a day): "554 5.2.0 STOREDRV.Submission.Exception:
// SubmissionQuotaExceededException". Permanent in form, temporary in fact: the message waits and the
// account backs off instead of the message failing.
inline bool quota_exceeded(const smtp::Reply& reply) {
    for (const auto& line : reply.lines)
        if (line.find("QuotaExceeded") != std::string::npos) return true;
    return false;
}

// The one table: which of the above `reply` is.
inline ReplyScope scope_of(const smtp::Reply& reply) {
    if (reply.positive()) return ReplyScope::delivered;
    if (!reply.permanent() || quota_exceeded(reply)) return ReplyScope::retry;
    const std::string code = reply.enhanced();
    if (code == "5.7.60" || code == "5.2.252") return ReplyScope::deny_sender;
    if (code == "5.7.139" || code == "5.2.251" || code == "5.2.253" || code == "5.2.254" || code == "5.2.255")
        return ReplyScope::hold_account;
    return ReplyScope::fail_message;
}

// The admin's next step when `reply` must put the account on hold; nullopt otherwise.
inline std::optional<std::string> hold_action_for(const smtp::Reply& reply) {
    if (scope_of(reply) != ReplyScope::hold_account) return std::nullopt;
    if (reply.enhanced() == "5.7.139")
        return "enable SMTP AUTH for the mailbox (Set-CASMailbox -Identity <mailbox> "
               "-SmtpClientAuthenticationDisabled $false) or tenant, then: smtp-oauth2-relay queue retry --all";
    return "Exchange Online is throttling the mailbox after repeated errors; fix the cause, wait, "
           "then run: smtp-oauth2-relay queue retry --all";
}

// The admin's next step for a sender Exchange refused (logged with the failed message).
inline constexpr const char* kSendAsAction =
    "grant the mailbox SendAs rights for the sender (Add-RecipientPermission <sender> -Trustee <mailbox> "
    "-AccessRights SendAs) and list it in send_as, or set rewrite_sender; then: smtp-oauth2-relay queue retry ID";

}  // namespace relay
