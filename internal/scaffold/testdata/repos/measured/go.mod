module example.com/measured

go 1.22
