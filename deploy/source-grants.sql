-- A least-privilege database user for mailconf's [[source]]: it reads the domain tables, nothing else.
-- mailconf only runs its configured SELECT, in a read-only transaction.

-- PostgreSQL (PostfixAdmin database `postfix`; psql -d postfix):
CREATE ROLE mailconf LOGIN PASSWORD 'change-me';
GRANT CONNECT ON DATABASE postfix TO mailconf;
GRANT USAGE ON SCHEMA public TO mailconf;
GRANT SELECT (domain, active) ON public.domain TO mailconf;
GRANT SELECT (alias_domain, target_domain, active) ON public.alias_domain TO mailconf;
-- For `listen = "mailconf"`, a trigger the owner creates:
--   CREATE FUNCTION mailconf_notify() RETURNS trigger LANGUAGE plpgsql AS
--     $$ BEGIN PERFORM pg_notify('mailconf', ''); RETURN NULL; END $$;
--   CREATE TRIGGER mailconf_domain AFTER INSERT OR UPDATE OR DELETE ON domain
--     FOR EACH STATEMENT EXECUTE FUNCTION mailconf_notify();
--   (the same on alias_domain)

-- MySQL / MariaDB:
-- CREATE USER 'mailconf'@'192.0.2.25' IDENTIFIED BY 'change-me';
-- GRANT SELECT (domain, active) ON postfix.domain TO 'mailconf'@'192.0.2.25';
-- GRANT SELECT (alias_domain, target_domain, active) ON postfix.alias_domain TO 'mailconf'@'192.0.2.25';

-- SQLite: give the service read access to the file only (e.g. a group with r on the file, r-x on its
-- directory); mailconf opens it read-only.
