package main

// version is what GET /version answers: change it, save, and watch the running service update.
const version = "v1"
