package memstore_test

import (
	"testing"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/memstore"
	"github.com/tokencache/tokencache/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) tokencache.Store { return memstore.New() })
}
