a = 1
b = 2.0
score = a + b
