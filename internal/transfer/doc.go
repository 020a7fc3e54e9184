// Package transfer moves tokens in and out of a tokencache.Store: the import
// and export commands, over any Store (Redis, or the durable record behind
// it), in the formats a Format describes: JSON lines (tokencache's own, a
// complete backup with --include-secrets) and the Zoho SDK's stores.
//
// An import checks every record first and names a bad one by its line or
// row; the others are imported all the same. --dry-run reads the store and
// says what each record would change, without writing.
package transfer
