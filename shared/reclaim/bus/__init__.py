"""The bus runtime: consume OpenStack notifications from RabbitMQ and store their timers."""
