// Package admin holds the commands that look at and change the tokens of a
// namespace: list, show, revoke, purge and stats. None of them ever prints a
// secret: tokens are shown through package view, which redacts them.
package admin
