// CurlHttpClient against a minimal loopback HTTP responder (one raw socket on its own thread):
// the request on the wire, status/body passthrough, no redirects, errors that name the URL but
// never the form, and refusal of plain http to non-loopback hosts before any network activity.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include "auth/http_client.hpp"

using namespace relay::auth;

namespace {

// Accepts one connection, reads one request (headers + Content-Length body), sends `reply`.
class OneShotServer {
public:
    explicit OneShotServer(std::string reply, bool answer = true) : reply_(std::move(reply)), answer_(answer) {
        listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        socklen_t len = sizeof addr;
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
        ::listen(listener_, 1);
        thread_ = std::thread([this] { serve(); });
    }
    ~OneShotServer() {
        ::shutdown(listener_, SHUT_RDWR);
        thread_.join();
        ::close(listener_);
    }
    std::string url(const std::string& path = "/token") const {
        return "http://127.0.0.1:" + std::to_string(port_) + path;
    }
    std::string request() {
        thread_.join();
        thread_ = std::thread([] {});
        return request_;
    }

private:
    void serve() {
        int fd = ::accept(listener_, nullptr, nullptr);
        if (fd < 0) return;
        char buffer[4096];
        std::size_t body_start = std::string::npos, length = 0;
        while (true) {
            ssize_t n = ::read(fd, buffer, sizeof buffer);
            if (n <= 0) break;
            request_.append(buffer, static_cast<std::size_t>(n));
            if (body_start == std::string::npos && (body_start = request_.find("\r\n\r\n")) != std::string::npos) {
                body_start += 4;
                auto cl = request_.find("Content-Length: ");
                if (cl != std::string::npos) length = std::stoul(request_.substr(cl + 16));
            }
            if (body_start != std::string::npos && request_.size() >= body_start + length) break;
        }
        if (answer_) {
            ::send(fd, reply_.data(), reply_.size(), MSG_NOSIGNAL);  // the client may be gone
        } else {
            ::read(fd, buffer, sizeof buffer);  // hold the connection open until the client gives up
        }
        ::close(fd);
    }

    std::string reply_;
    bool answer_;
    int listener_ = -1;
    std::uint16_t port_ = 0;
    std::string request_;
    std::thread thread_;
};

std::string http_reply(const std::string& status, const std::string& body, const std::string& extra = "") {
    return "HTTP/1.1 " + status + "\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n" + extra + "Connection: close\r\n\r\n" + body;
}

}  // namespace

TEST(CurlHttpClient, PostsFormAndReturnsAnyStatusWithBody) {
    std::string body = R"({"error":"invalid_grant","error_description":"AADSTS70008: expired"})";
    OneShotServer server(http_reply("400 Bad Request", body));
    CurlHttpClient client;
    HttpResponse r = client.post_form(server.url(), {{"grant_type", "refresh_token"}, {"refresh_token", "a b&c"}});
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.body, body);
    std::string request = server.request();
    EXPECT_EQ(request.rfind("POST /token HTTP/1.1\r\n", 0), 0u) << request;
    EXPECT_NE(request.find("Content-Type: application/x-www-form-urlencoded\r\n"), std::string::npos);
    EXPECT_NE(request.find("User-Agent: smtp-oauth2-relay/" RELAY_VERSION "\r\n"), std::string::npos);
    EXPECT_NE(request.find("\r\n\r\ngrant_type=refresh_token&refresh_token=a%20b%26c"), std::string::npos);
}

TEST(CurlHttpClient, DoesNotFollowRedirects) {
    OneShotServer server(http_reply("302 Found", "", "Location: http://127.0.0.1:1/elsewhere\r\n"));
    CurlHttpClient client;
    EXPECT_EQ(client.post_form(server.url(), {{"a", "b"}}).status, 302);
}

TEST(CurlHttpClient, RefusesPlainHttpToNonLoopbackHostsWithoutNetwork) {
    CurlHttpClient client;
    for (std::string url : {"http://login.microsoftonline.com/common/oauth2/v2.0/token",
                            "http://10.0.0.1/token", "http://127.0.0.1@evil.example/token",
                            "HTTP://evil.example/token", "ftp://127.0.0.1/token", "login.example/token"}) {
        try {
            client.post_form(url, {{"client_secret", "SECRET"}});
            FAIL() << url;
        } catch (const HttpError& e) {
            std::string what = e.what();
            EXPECT_NE(what.find("https is required"), std::string::npos) << what;
            EXPECT_NE(what.find(url), std::string::npos) << what;
            EXPECT_EQ(what.find("SECRET"), std::string::npos);
        }
    }
}

TEST(CurlHttpClient, TransportErrorNamesUrlNotForm) {
    int probe = ::socket(AF_INET, SOCK_STREAM, 0);  // grab a free port, then close it: connect is refused
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    ::getsockname(probe, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(probe);
    std::string url = "http://localhost:" + std::to_string(ntohs(addr.sin_port)) + "/token";
    CurlHttpClient client;
    try {
        client.post_form(url, {{"refresh_token", "SECRET-RT"}});
        FAIL();
    } catch (const HttpError& e) {
        std::string what = e.what();
        EXPECT_NE(what.find(url), std::string::npos) << what;
        EXPECT_EQ(what.find("SECRET-RT"), std::string::npos) << what;
    }
}

TEST(CurlHttpClient, TotalTimeoutApplies) {
    OneShotServer server("", /*answer=*/false);
    CurlHttpClient client({std::chrono::seconds(1), std::chrono::seconds(1), ""});
    auto start = std::chrono::steady_clock::now();
    EXPECT_THROW(client.post_form(server.url(), {{"a", "b"}}), HttpError);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(CurlHttpClient, HttpsToNonTlsServerIsAnHttpError) {
    // A plain-HTTP listener behind an https URL: the TLS handshake fails, reported as HttpError.
    OneShotServer server(http_reply("200 OK", "{}"));
    CurlHttpClient client({std::chrono::seconds(2), std::chrono::seconds(2), ""});
    std::string url = server.url();
    url.replace(0, 4, "https");
    EXPECT_THROW(client.post_form(url, {{"a", "b"}}), HttpError);
}
