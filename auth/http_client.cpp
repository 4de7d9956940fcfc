// The blocking libcurl POST used for the OAuth2 token endpoint. One easy handle per call keeps it
// thread-safe without shared state. TLS verification is always on; plain http is only allowed to
// loopback hosts (test stand-ins), because the form carries the refresh token and client secret
// (RFC 6749 section 10.3/10.4 require TLS for both). Errors name the URL, never the form body.
#include "auth/http_client.hpp"

#include <algorithm>
#include <cctype>
#include <memory>

#include <boost/asio/ip/address.hpp>
#include <curl/curl.h>

namespace relay::auth {
namespace {

// curl_global_init is not thread-safe; a function-local static runs it exactly once.
void init_curl_once() {
    static const bool done = [] {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        return true;
    }();
    (void)done;
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

// "http://host:port/path" -> "host" (brackets removed for IPv6). Userinfo is not allowed in our
// token URLs, so an '@' makes the URL count as non-loopback (never trust "127.0.0.1@evil").
std::string url_host(std::string_view url) {
    std::size_t scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) return {};
    std::string_view rest = url.substr(scheme_end + 3);
    rest = rest.substr(0, rest.find_first_of("/?#"));
    if (rest.find('@') != std::string_view::npos) return {};
    if (!rest.empty() && rest.front() == '[') {
        std::size_t close = rest.find(']');
        return close == std::string_view::npos ? std::string{} : std::string(rest.substr(1, close - 1));
    }
    return std::string(rest.substr(0, rest.find(':')));
}

bool is_loopback_host(const std::string& host) {
    if (lower(host) == "localhost") return true;
    boost::system::error_code ec;
    auto address = boost::asio::ip::make_address(host, ec);
    return !ec && address.is_loopback();  // 127.0.0.0/8 and ::1
}

struct BodySink {
    std::string& body;
    std::size_t limit;
    bool too_large = false;
};

// Returning less than was offered makes libcurl abort the transfer (CURLE_WRITE_ERROR): memory
// stays bounded by max_body whatever the server sends, with or without a Content-Length.
std::size_t collect_body(char* data, std::size_t size, std::size_t count, void* user) {
    auto* sink = static_cast<BodySink*>(user);
    const std::size_t n = size * count;
    if (sink->body.size() + n > sink->limit) {
        sink->too_large = true;
        return 0;
    }
    sink->body.append(data, n);
    return n;
}

struct EasyDeleter {
    void operator()(CURL* h) const { curl_easy_cleanup(h); }
};

}  // namespace

std::string url_encode(std::string_view text) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(text.size() * 3);
    for (unsigned char c : text) {
        // RFC 3986 unreserved characters go as they are; everything else is percent-encoded
        // (the WHATWG form encoding's '+' for space is avoided: %20 is accepted everywhere).
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

std::string url_encode_form(const FormFields& form) {
    std::string out;
    for (const auto& [name, value] : form) {
        if (!out.empty()) out += '&';
        out += url_encode(name);
        out += '=';
        out += url_encode(value);
    }
    return out;
}

CurlHttpClient::CurlHttpClient() : CurlHttpClient(Options{}) {}
CurlHttpClient::CurlHttpClient(Options options) : options_(std::move(options)) { init_curl_once(); }

HttpResponse CurlHttpClient::post_form(const std::string& url, const FormFields& form) {
    std::string scheme = lower(url.substr(0, url.find("://")));
    if (scheme == "http") {
        if (!is_loopback_host(url_host(url)))
            throw HttpError("refusing plain http to " + url +
                            ": https is required (http is only allowed to loopback hosts)");
    } else if (scheme != "https" || url.find("://") == std::string::npos) {
        throw HttpError("unsupported URL " + url + ": https is required");
    }

    std::unique_ptr<CURL, EasyDeleter> handle(curl_easy_init());
    if (!handle) throw HttpError("cannot initialise libcurl for " + url);
    CURL* h = handle.get();
    std::string body = url_encode_form(form);
    HttpResponse response;
    char error_text[CURL_ERROR_SIZE] = {};
    curl_slist* headers = curl_slist_append(nullptr, "Accept: application/json");
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_guard(headers, &curl_slist_free_all);

    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM for DNS timeouts in a threaded daemon
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count() * 1000));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.total_timeout.count() * 1000));
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!options_.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, options_.ca_file.c_str());
    curl_easy_setopt(h, CURLOPT_USERAGENT, "smtp-oauth2-relay/" RELAY_VERSION);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &collect_body);
    BodySink sink{response.body, options_.max_body};
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options_.max_body));
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_text);

    CURLcode rc = curl_easy_perform(h);
    if (sink.too_large || rc == CURLE_FILESIZE_EXCEEDED)
        throw HttpError("POST " + url + " failed: response body larger than " + std::to_string(options_.max_body) +
                        " bytes");
    if (rc != CURLE_OK) {
        std::string reason = error_text[0] ? error_text : curl_easy_strerror(rc);
        throw HttpError("POST " + url + " failed: " + reason);
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
    return response;
}

}  // namespace relay::auth
