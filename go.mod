module github.com/weirmq/weir

go 1.26
