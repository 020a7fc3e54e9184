package lock

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// SetNote records for the whole fleet, for d, a short note about token id:
// how its last refresh ended, or which token a spent grant or refresh token
// became. The refresher defines what notes say; they are short words and
// numbers, never secrets. A note sits in the token's slot.
func (l *Locker) SetNote(ctx context.Context, id, note string, d time.Duration) error {
	if l.cfg.err != nil {
		return l.cfg.err
	}
	if err := l.rdb.Set(ctx, l.noteKey(id), note, d).Err(); err != nil {
		return fmt.Errorf("lock: set note %s: %w", id, err)
	}
	return nil
}

// Note returns token id's note, or "" when there is none.
func (l *Locker) Note(ctx context.Context, id string) (string, error) {
	if l.cfg.err != nil {
		return "", l.cfg.err
	}
	note, err := l.rdb.Get(ctx, l.noteKey(id)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("lock: read note %s: %w", id, err)
	}
	return note, nil
}

// ClearNote drops token id's note.
func (l *Locker) ClearNote(ctx context.Context, id string) error {
	if l.cfg.err != nil {
		return l.cfg.err
	}
	if err := l.rdb.Del(ctx, l.noteKey(id)).Err(); err != nil {
		return fmt.Errorf("lock: clear note %s: %w", id, err)
	}
	return nil
}
