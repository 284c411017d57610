-- Run once by the postgres image on an empty volume: MLflow's database is POSTGRES_DB (mlflow); Prefect gets its own.
CREATE DATABASE prefect;
