package ratingapi

import (
	"container/list"
	"sync"
)

// DefaultMaxItems is how many items Ratings keeps aggregates for when
// NewRatings is given no bound.
const DefaultMaxItems = 100_000

// Summary is the aggregate of an item's ratings.
type Summary struct {
	ItemID  string  `json:"item_id"`
	Count   int64   `json:"count"`
	Average float64 `json:"average"`
}

// Ratings keeps the count and sum of the scores of each item, in memory.
// It keeps at most a fixed number of items; when a new item needs room,
// the item rated least recently is forgotten. Single ratings are not kept.
// It is safe for concurrent use.
type Ratings struct {
	mu    sync.Mutex
	max   int
	items map[string]*list.Element // of *aggregate
	order *list.List               // most recently rated first
}

type aggregate struct {
	itemID string
	count  int64
	sum    int64
}

// NewRatings returns an empty store that keeps at most maxItems items, or
// DefaultMaxItems when maxItems is below one.
func NewRatings(maxItems int) *Ratings {
	if maxItems < 1 {
		maxItems = DefaultMaxItems
	}
	return &Ratings{max: maxItems, items: make(map[string]*list.Element), order: list.New()}
}

// Add counts one score for itemID and returns the item's new summary.
func (s *Ratings) Add(itemID string, score int) Summary {
	s.mu.Lock()
	defer s.mu.Unlock()

	el, ok := s.items[itemID]
	if ok {
		s.order.MoveToFront(el)
	} else {
		if len(s.items) >= s.max {
			oldest := s.order.Back()
			delete(s.items, oldest.Value.(*aggregate).itemID)
			s.order.Remove(oldest)
		}
		el = s.order.PushFront(&aggregate{itemID: itemID})
		s.items[itemID] = el
	}
	agg := el.Value.(*aggregate)
	agg.count++
	agg.sum += int64(score)
	return agg.summary()
}

// Get returns the summary of itemID, and false when it has no ratings.
func (s *Ratings) Get(itemID string) (Summary, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()

	el, ok := s.items[itemID]
	if !ok {
		return Summary{}, false
	}
	return el.Value.(*aggregate).summary(), true
}

// Len returns the number of items held.
func (s *Ratings) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items)
}

func (a *aggregate) summary() Summary {
	return Summary{ItemID: a.itemID, Count: a.count, Average: float64(a.sum) / float64(a.count)}
}
