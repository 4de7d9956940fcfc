// Internals shared by the two halves of the configuration module: the pure value parsers
// (values.cpp) and the table-driven loader (config.cpp). Not part of the public interface; other
// modules use conf/config.hpp only.
#pragma once

#include <array>
#include <span>
#include <string_view>
#include <utility>

#include "conf/config.hpp"

namespace relay::conf::detail {

// One spelling per enumerator; the loader accepts exactly these and to_string() prints them.
inline constexpr std::array<std::pair<std::string_view, Provider>, 3> provider_names{{
    {"microsoft", Provider::microsoft}, {"google", Provider::google}, {"custom", Provider::custom}}};
inline constexpr std::array<std::pair<std::string_view, UpstreamTls>, 3> upstream_tls_names{{
    {"starttls", UpstreamTls::starttls}, {"implicit", UpstreamTls::implicit}, {"none", UpstreamTls::none}}};
inline constexpr std::array<std::pair<std::string_view, UpstreamAuth>, 5> upstream_auth_names{{
    {"xoauth2", UpstreamAuth::xoauth2}, {"oauthbearer", UpstreamAuth::oauthbearer},
    {"plain", UpstreamAuth::plain}, {"login", UpstreamAuth::login}, {"none", UpstreamAuth::none}}};
inline constexpr std::array<std::pair<std::string_view, LogLevel>, 4> log_level_names{{
    {"debug", LogLevel::debug}, {"info", LogLevel::info}, {"warning", LogLevel::warning},
    {"error", LogLevel::error}}};
inline constexpr std::array<std::pair<std::string_view, AuthMode>, 2> auth_mode_names{{
    {"delegated", AuthMode::delegated}, {"client_credentials", AuthMode::client_credentials}}};
inline constexpr std::array<std::pair<std::string_view, Cloud>, 3> cloud_names{{
    {"global", Cloud::global}, {"usgov", Cloud::usgov}, {"china", Cloud::china}}};
inline constexpr std::array<std::pair<std::string_view, LogFormat>, 4> log_format_names{{
    {"auto", LogFormat::automatic}, {"text", LogFormat::text}, {"json", LogFormat::json},
    {"journal", LogFormat::journal}}};

inline constexpr std::array<std::pair<std::string_view, DeliveryMode>, 2> delivery_mode_names{{
    {"queue", DeliveryMode::queue}, {"direct", DeliveryMode::direct}}};

inline constexpr std::array<std::pair<std::string_view, TransportKind>, 2> transport_names{{
    {"smtp", TransportKind::smtp}, {"graph", TransportKind::graph}}};

inline constexpr std::array<std::pair<std::string_view, RewriteSender>, 3> rewrite_sender_names{{
    {"never", RewriteSender::never}, {"unallowed", RewriteSender::unallowed}, {"always", RewriteSender::always}}};

inline std::span<const std::pair<std::string_view, DeliveryMode>> names_of(DeliveryMode) { return delivery_mode_names; }
inline std::span<const std::pair<std::string_view, RewriteSender>> names_of(RewriteSender) { return rewrite_sender_names; }
inline std::span<const std::pair<std::string_view, TransportKind>> names_of(TransportKind) { return transport_names; }
inline std::span<const std::pair<std::string_view, Provider>> names_of(Provider) { return provider_names; }
inline std::span<const std::pair<std::string_view, UpstreamTls>> names_of(UpstreamTls) { return upstream_tls_names; }
inline std::span<const std::pair<std::string_view, UpstreamAuth>> names_of(UpstreamAuth) { return upstream_auth_names; }
inline std::span<const std::pair<std::string_view, LogLevel>> names_of(LogLevel) { return log_level_names; }
inline std::span<const std::pair<std::string_view, AuthMode>> names_of(AuthMode) { return auth_mode_names; }
inline std::span<const std::pair<std::string_view, Cloud>> names_of(Cloud) { return cloud_names; }
inline std::span<const std::pair<std::string_view, LogFormat>> names_of(LogFormat) { return log_format_names; }

// A DNS name as it may appear in host:port, EHLO or a URL: letters, digits, '-', '.', '_'.
bool is_host_name(std::string_view text);

// 127.0.0.0/8, ::1, ::ffff:127.x.y.z or "localhost": traffic to it never leaves the machine.
bool is_loopback_host(std::string_view host);

// Levenshtein distance, for "did you mean" suggestions on misspelt keys and names.
std::size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace relay::conf::detail
