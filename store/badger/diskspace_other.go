//go:build !(linux || darwin || freebsd)

package badgerstore

func freeBytes(string) (int64, error) { return 0, errNoStatfs }
