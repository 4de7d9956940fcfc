// The group commit (see spool.hpp): messages waiting to be made durable are synced, renamed into
// queue/ and their directory synced in batches, on the blocking pool.
#include "relay/spool/spool.hpp"

#include <utility>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <system_error>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "relay/core/blocking.hpp"
#include "relay/core/durable_file.hpp"
#include "relay/core/spawn.hpp"

namespace relay {
namespace {

namespace fs = std::filesystem;
namespace asio = boost::asio;

// Parallel fdatasyncs per commit batch; the daemon's blocking pool has 4 threads (cmd_serve.cpp).
constexpr std::size_t kSyncLanes = 4;

}  // namespace

// ---------------------------------------------------------------------------------------------
// SpoolCommitter

struct SpoolCommitter::Impl : std::enable_shared_from_this<Impl> {
    struct Entry {
        explicit Entry(asio::any_io_executor io) : wake(io, asio::steady_timer::time_point::max()) {}
        Pending pending;
        asio::steady_timer wake;
        int error = 0;
        std::string what;
        bool done = false;
    };

    Spool& spool;
    asio::any_io_executor io;
    asio::thread_pool& pool;
    std::vector<std::shared_ptr<Entry>> waiting;   // written, not yet synced
    std::vector<std::shared_ptr<Entry>> synced;    // data synced, not yet renamed into queue/
    bool syncing = false;
    bool publishing = false;
    std::uint64_t batches = 0;

    Impl(Spool& s, asio::any_io_executor e, asio::thread_pool& p) : spool(s), io(std::move(e)), pool(p) {}

    // Two stages, each one batch at a time, overlapping: while one batch is renamed and its
    // directory synced, the next batch's data is synced. Each stage waits on a device flush, so a
    // pipeline of two keeps the disk busy twice as often under concurrent sessions.
    // A stage should never throw (its blocking work reports through the entries); if one does, the
    // exception is logged (core::spawn), its batch is answered as failed so no client waits
    // forever (their incoming files are swept at the next start), and the stage starts again.
    void kick() {
        if (!syncing && !waiting.empty()) {
            syncing = true;
            ++batches;
            auto batch = std::exchange(waiting, {});
            core::spawn(io, sync_stage(batch, shared_from_this()), "spool_sync_stage", "",
                        stage_failed(batch, &Impl::syncing));
        }
        if (!publishing && !synced.empty()) {
            publishing = true;
            auto batch = std::exchange(synced, {});
            core::spawn(io, publish_stage(batch, shared_from_this()), "spool_publish_stage", "",
                        stage_failed(batch, &Impl::publishing));
        }
    }

    core::OnFailure stage_failed(std::vector<std::shared_ptr<Entry>> batch, bool Impl::*running) {
        std::weak_ptr<Impl> weak = weak_from_this();
        return [weak, batch, running](std::exception_ptr) mutable {
            mark_failed(batch);
            for (auto& entry : batch) {
                entry->done = true;
                entry->wake.cancel();
            }
            if (auto self = weak.lock()) {
                (*self).*running = false;
                self->kick();
            }
        };
    }

    // fdatasync of every file in the batch, on this pool thread and up to kSyncLanes - 1 others:
    // syncs issued together share the device's cache flushes, while one after another each waits
    // for a flush of its own and a batch costs as much as its messages one by one. Helpers take
    // files from a shared counter, so a busy (or one-thread) pool only means this thread does more;
    // it waits just for files a helper has already taken.
    struct SyncWork {
        std::vector<std::shared_ptr<Entry>> files;
        std::atomic<std::size_t> next{0};
        std::atomic<std::size_t> finished{0};
        void run() {
            for (std::size_t i; (i = next.fetch_add(1)) < files.size();) {
                Entry& e = *files[i];
                if (::fdatasync(e.pending.fd) != 0) {
                    e.error = errno;
                    e.what = "fdatasync";
                }
                ::close(e.pending.fd);
                e.pending.fd = -1;
                if (finished.fetch_add(1) + 1 == files.size()) finished.notify_all();
            }
        }
    };

    void sync_files(const std::vector<std::shared_ptr<Entry>>& batch) {
        auto work = std::make_shared<SyncWork>();
        work->files = batch;
        for (std::size_t helper = 1; helper < std::min(batch.size(), kSyncLanes); ++helper)
            asio::post(pool, [work] { work->run(); });
        work->run();
        for (std::size_t seen; (seen = work->finished.load()) < batch.size();) work->finished.wait(seen);
    }

    // Runs on the pool, after sync_files: the renames, then one directory sync.
    void publish(std::vector<std::shared_ptr<Entry>>& batch) {
        bool renamed_any = false;
        for (auto& e : batch) {
            if (e->error) {
                ::unlink(spool.incoming_path(e->pending.id).c_str());
                continue;
            }
            fs::path from = spool.incoming_path(e->pending.id);
            fs::path to = spool.queue_path(e->pending.id);
            if (::rename(from.c_str(), to.c_str()) != 0) {
                e->error = errno;
                e->what = "rename";
                ::unlink(from.c_str());
            } else {
                renamed_any = true;
            }
        }
        if (!renamed_any) return;
        try {
            fsync_directory(spool.queue_dir());
        } catch (const std::system_error& err) {
            for (auto& e : batch)
                if (!e->error) {
                    // The rename may not be durable: take the file back so the client retries.
                    ::unlink(spool.queue_path(e->pending.id).c_str());
                    e->error = err.code().value();
                    e->what = "fsync queue directory";
                }
        }
    }

    static void mark_failed(std::vector<std::shared_ptr<Entry>>& batch) {
        for (auto& entry : batch)
            if (!entry->error) {
                entry->error = EIO;
                entry->what = "spool sync failed";
            }
    }

    // Runs one stage's blocking work on the pool; if it throws, every entry not yet failed fails.
    template <class Job>
    static asio::awaitable<void> on_pool(std::shared_ptr<Impl> self, std::vector<std::shared_ptr<Entry>>& batch, Job job) {
        bool failed = false;
        try {
            co_await run_blocking(self->pool, std::move(job));
        } catch (...) {
            failed = true;
        }
        if (failed) mark_failed(batch);
    }

    static asio::awaitable<void> sync_stage(std::vector<std::shared_ptr<Entry>> batch, std::shared_ptr<Impl> self) {
        // Named before the co_await: a lambda built inside it trips a GCC 12 coroutine bug.
        auto job = [self, &batch] { self->sync_files(batch); };
        co_await on_pool(self, batch, std::move(job));
        // Failed entries go on too: publishing removes their incoming files and answers them.
        self->synced.insert(self->synced.end(), batch.begin(), batch.end());
        self->syncing = false;
        self->kick();
    }

    static asio::awaitable<void> publish_stage(std::vector<std::shared_ptr<Entry>> batch, std::shared_ptr<Impl> self) {
        auto job = [self, &batch] { self->publish(batch); };
        co_await on_pool(self, batch, std::move(job));
        for (auto& entry : batch) {
            entry->done = true;
            entry->wake.cancel();
        }
        self->publishing = false;
        self->kick();
    }
};

SpoolCommitter::SpoolCommitter(Spool& spool, asio::any_io_executor io, asio::thread_pool& blocking)
    : impl_(std::make_shared<Impl>(spool, std::move(io), blocking)) {}

SpoolCommitter::~SpoolCommitter() = default;

asio::awaitable<void> SpoolCommitter::commit(Pending pending) {
    auto entry = std::make_shared<Impl::Entry>(impl_->io);
    entry->pending = std::move(pending);
    impl_->waiting.push_back(entry);
    impl_->kick();
    while (!entry->done) co_await entry->wake.async_wait(asio::as_tuple(asio::use_awaitable));
    if (entry->error)
        throw std::system_error(entry->error, std::generic_category(),
                                "spool commit of " + entry->pending.id + ": " + entry->what);
}

std::uint64_t SpoolCommitter::batches() const { return impl_->batches; }

}  // namespace relay
