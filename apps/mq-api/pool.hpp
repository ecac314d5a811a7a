#pragma once

// A small pool of blocking clients (redis::Connection, pg::Database): each is used by one
// thread at a time. A client whose call failed reconnects by itself on its next use, so
// it goes back to the pool like any other.

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace mqapi {

template <class T>
class Pool {
  public:
    explicit Pool(std::function<std::unique_ptr<T>()> make) : make_(std::move(make)) {}

    class Lease {
      public:
        Lease(Pool& pool, std::unique_ptr<T> item) : pool_(&pool), item_(std::move(item)) {}
        Lease(Lease&& other) noexcept = default;
        Lease& operator=(Lease&&) = delete;
        ~Lease() {
            if (item_) pool_->give_back(std::move(item_));
        }
        T& operator*() const { return *item_; }
        T* operator->() const { return item_.get(); }

      private:
        Pool* pool_;
        std::unique_ptr<T> item_;
    };

    Lease acquire() {
        {
            std::lock_guard lock(mutex_);
            if (!idle_.empty()) {
                auto item = std::move(idle_.back());
                idle_.pop_back();
                return Lease(*this, std::move(item));
            }
        }
        return Lease(*this, make_());
    }

  private:
    void give_back(std::unique_ptr<T> item) {
        std::lock_guard lock(mutex_);
        if (idle_.size() < kMaxIdle) idle_.push_back(std::move(item));
    }
    static constexpr std::size_t kMaxIdle = 32;
    std::function<std::unique_ptr<T>()> make_;
    std::mutex mutex_;
    std::vector<std::unique_ptr<T>> idle_;
};

}  // namespace mqapi
