// Command transfermoney is the transfer service of the cosmos example.
//
// POST /transfers {"from","to","amount"} withdraws amount from the account
// service's account "from", deposits it into "to", and publishes the transfer
// as a JSON event to a Kafka topic. GET /health answers "ok" and GET /version
// the build's version.
//
// Settings come from the environment:
//
//	PORT         port to listen on (8080)
//	ACCOUNT_URL  base URL of the account service (http://account:8080)
//	BROKER       Kafka bootstrap address(es), comma-separated (kafka:9092)
//	TOPIC        topic the events go to (transfers)
//
// The service starts without Kafka; a transfer whose event cannot be published
// within a few seconds is answered 503 with the error.
package main
