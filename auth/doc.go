// Package auth reads Mosquitto-compatible password files (mosquitto_passwd
// $7$ PBKDF2-SHA512 and $6$ SHA-512 hashes) and ACL files, and answers
// "is this password right" and "may this client do that on this topic".
//
// It must never import the broker: the broker adapts it (broker.FileAccess),
// and other programs (the weir passwd subcommand) use it alone.
package auth
