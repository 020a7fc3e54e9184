// Package zohofmt reads and writes the token stores of the Zoho CRM SDKs, so
// that a team can move its tokens into tokencache and back out again.
//
// Two formats are read: the FileStore CSV (ReadCSV) and the DBStore table
// (ReadDB: the SDK's MySQL table, or a Kaizen-style SQLite table, in any
// database sqlstore.Open reaches). One is written: the FileStore CSV
// (CSVWriter), which the SDKs read back.
//
// Readers stream: they call a function once per row with the row's line
// number (CSV) or position (table) and, for a row that cannot be imported,
// an error that names the row and the column but never quotes a secret.
// The caller imports the good rows and reports the bad ones.
//
// Zoho IDs ("1", "2", …) are kept, so code that holds a Zoho ID still finds
// its token. Tokens the SDK saved by refresh token only (an empty
// user_name) keep that identity: nothing is invented for them.
package zohofmt
