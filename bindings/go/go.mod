module github.com/libgemfa/libgemfa/bindings/go

go 1.19
