package postgres_test

const childEnv = "EVENTO_POSTGRES_TEST_CHILD"

func runChild() int { return 0 }
