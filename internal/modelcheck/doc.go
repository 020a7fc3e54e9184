// Package modelcheck checks a tokencache.Store against the reference
// memstore by driving both with the same randomized, seeded operations, the
// way Jepsen checks a history against a model.
//
// Run generates saves (with and without Version, stale Versions included)
// by ID, by user and client, by grant, by refresh and by access token;
// identity moves by ID that change a token's user name, refresh or access
// token, onto another token's identity and back; values shared between
// tokens; deletes, DeleteTokens, GetTokens and lookups by every rule of
// DESIGN §3. It sends each operation to one of several instances of the
// store under test, each a separate process with its own client and hint
// cache, and to the model, and after every step checks that
//
//   - every answer equals the model's: the same error class, the same token
//     fields, the same ID (store IDs of inserts are mapped to the model's
//     through the history) and the same revision (a faulted write that ran
//     twice may shift a token's revisions by a constant, which the driver
//     learns when it resolves the fault and then holds fixed);
//   - GetTokens through an unfaulted observer returns exactly the model's
//     tokens, so no identity holds two tokens where the model has one and
//     no live token is left out;
//   - every live token is found by ID, and every lookup of the small value
//     universe (every user, grant and refresh token with every client, every
//     access token) answers as the model does, through the step's instance
//     and through the observer: nothing is unreachable, and two processes
//     never answer differently.
//
// A few steps are races: two or three saves of one user+client identity
// through different instances at the same moment, sometimes with the delete
// of its current holder (an upsert racing a delete and a new login). The
// answers must fit some serial order, which the driver reads from them and
// replays on the model.
//
// With a FaultRate, an Injector (a go-redis hook) fails the operation at
// its first Redis command, then at its second, and so on until the
// operation completes first, with one of the Modes: cancel the caller's
// context, lose the command or its reply, close the connection, or kill
// the process (before or after Redis ran the command). A faulted call must
// return an error that is not ErrNotFound and never another user's token;
// its effect is read back through the observer and applied to the model,
// then the call is retried as a caller would and the invariants are
// checked again.
//
// A Failure names the seed and step and carries the whole history, so a
// run can be replayed from its seed.
package modelcheck
