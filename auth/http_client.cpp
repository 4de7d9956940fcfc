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

// A body with a cap: bytes beyond it are dropped (and the transfer aborted), so a hostile or broken
// server cannot make the relay buffer without bound.
struct CappedBody {
    std::string* out;
    std::size_t limit;
};
std::size_t collect_capped(char* data, std::size_t size, std::size_t count, void* user) {
    auto* body = static_cast<CappedBody*>(user);
    const std::size_t room = body->limit - std::min(body->limit, body->out->size());
    body->out->append(data, std::min(room, size * count));
    return room >= size * count ? size * count : 0;  // 0 makes libcurl stop with CURLE_WRITE_ERROR
}

// Keeps only the Retry-After header's value.
std::size_t collect_retry_after(char* data, std::size_t size, std::size_t count, void* user) {
    std::string_view line(data, size * count);
    constexpr std::string_view name = "retry-after:";
    if (line.size() > name.size() && lower(line.substr(0, name.size())) == name) {
        std::string_view value = line.substr(name.size());
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
        while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) value.remove_suffix(1);
        *static_cast<std::string*>(user) = std::string(value.substr(0, 100));
    }
    return size * count;
}

void check_scheme(const std::string& url) {
    std::string scheme = lower(url.substr(0, url.find("://")));
    if (scheme == "http") {
        if (!is_loopback_host(url_host(url)))
            throw HttpError("refusing plain http to " + url +
                            ": https is required (http is only allowed to loopback hosts)");
    } else if (scheme != "https" || url.find("://") == std::string::npos) {
        throw HttpError("unsupported URL " + url + ": https is required");
    }
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

HttpResponse HttpClient::post(const HttpPost& request) {
    throw HttpError("POST " + request.url + ": this HTTP client only talks to token endpoints");
}

HttpResponse CurlHttpClient::post(const HttpPost& request) {
    check_scheme(request.url);
    std::unique_ptr<CURL, EasyDeleter> handle(curl_easy_init());
    if (!handle) throw HttpError("cannot initialise libcurl for " + request.url);
    CURL* h = handle.get();
    HttpResponse response;
    CappedBody capped{&response.body, request.max_response};
    char error_text[CURL_ERROR_SIZE] = {};
    const std::string authorization = "Authorization: Bearer " + request.bearer_token;
    const std::string content_type = "Content-Type: " + request.content_type;
    curl_slist* headers = curl_slist_append(nullptr, "Accept: application/json");
    headers = curl_slist_append(headers, content_type.c_str());
    headers = curl_slist_append(headers, authorization.c_str());
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_guard(headers, &curl_slist_free_all);
    const std::string& ca_file = request.ca_file.empty() ? options_.ca_file : request.ca_file;

    curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);   // a redirect would carry the bearer token elsewhere
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count() * 1000));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(request.total_timeout.count() * 1000));
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, ca_file.c_str());
    curl_easy_setopt(h, CURLOPT_USERAGENT, "smtp-oauth2-relay/" RELAY_VERSION);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &collect_capped);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &capped);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &collect_retry_after);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &response.retry_after);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_text);

    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
    // A body over the cap still has its status: the answer is known, only its text is cut.
    if (rc == CURLE_WRITE_ERROR && response.status != 0) return response;
    if (rc != CURLE_OK) {
        std::string reason = error_text[0] ? error_text : curl_easy_strerror(rc);
        throw HttpError("POST " + request.url + " failed: " + reason);
    }
    return response;
}

HttpResponse CurlHttpClient::post_form(const std::string& url, const FormFields& form) {
    check_scheme(url);

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
    // A busy token endpoint may say when to come back (429/503); the token manager honours it.
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &collect_retry_after);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &response.retry_after);

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
