-- One database per service (DESIGN.md §6). Idempotent: deploy/stack runs it on every `up`,
-- and the postgres image in docker-compose.yml runs it on its first start.
SELECT format('CREATE DATABASE %I', name)
FROM unnest(ARRAY['auth_db', 'blog_db', 'notification_db']) AS name
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = name)
\gexec
