"""Operators: thin Airflow glue over manifests/, the cluster connection and the waiting loop."""
