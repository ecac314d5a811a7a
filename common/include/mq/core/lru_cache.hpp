#pragma once

// A bounded map that forgets its least recently used entry when full. Not thread-safe:
// the owner holds its own lock.

#include <cstddef>
#include <functional>
#include <list>
#include <unordered_map>
#include <utility>

namespace mq {

/// Least-recently-used cache of at most `capacity` entries: a hit moves the entry to the
/// front, an insert into a full cache drops the entry at the back (never everything).
template <class Key, class Value, class Hash = std::hash<Key>>
class LruCache {
  public:
    explicit LruCache(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {
        index_.reserve(capacity_);
    }

    /// The entry for `key` (marked as just used), or null.
    Value* find(const Key& key) {
        auto it = index_.find(key);
        if (it == index_.end()) return nullptr;
        order_.splice(order_.begin(), order_, it->second);
        return &it->second->second;
    }

    /// The entry for `key` without touching its place, or null.
    const Value* peek(const Key& key) const {
        auto it = index_.find(key);
        return it == index_.end() ? nullptr : &it->second->second;
    }

    /// Inserts or replaces; the entry becomes the most recently used.
    Value& put(const Key& key, Value value) {
        if (auto* v = find(key)) {
            *v = std::move(value);
            return *v;
        }
        if (index_.size() >= capacity_) {
            index_.erase(order_.back().first);
            order_.pop_back();
        }
        order_.emplace_front(key, std::move(value));
        index_.emplace(key, order_.begin());
        return order_.front().second;
    }

    bool erase(const Key& key) {
        auto it = index_.find(key);
        if (it == index_.end()) return false;
        order_.erase(it->second);
        index_.erase(it);
        return true;
    }

    void clear() {
        index_.clear();
        order_.clear();
    }

    std::size_t size() const { return index_.size(); }
    std::size_t capacity() const { return capacity_; }

  private:
    using Order = std::list<std::pair<Key, Value>>;
    std::size_t capacity_;
    Order order_;  // front: most recently used
    std::unordered_map<Key, typename Order::iterator, Hash> index_;
};

}  // namespace mq
