SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;
CREATE SCHEMA nsml_v1_dump;
SET default_tablespace = '';
SET default_table_access_method = heap;
CREATE TABLE nsml_v1_dump.catalog_meta (
    key character varying(64) NOT NULL,
    value text NOT NULL
);
CREATE TABLE nsml_v1_dump.cluster_info_cache (
    cluster character varying(64) NOT NULL,
    "user" character varying(64) NOT NULL,
    claimed_at double precision NOT NULL,
    fetched_at double precision,
    payload_json text NOT NULL,
    error text,
    error_at double precision
);
CREATE TABLE nsml_v1_dump.cluster_poll (
    cluster character varying(64) NOT NULL,
    last_query_at double precision NOT NULL,
    last_ok boolean NOT NULL,
    last_error text,
    queries integer NOT NULL
);
CREATE TABLE nsml_v1_dump.event (
    id integer NOT NULL,
    session_id integer NOT NULL,
    at double precision,
    kind character varying(64) NOT NULL,
    job_id character varying(64),
    data_json text NOT NULL
);
CREATE SEQUENCE nsml_v1_dump.event_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE nsml_v1_dump.event_id_seq OWNED BY nsml_v1_dump.event.id;
CREATE TABLE nsml_v1_dump.gpu_usage (
    session_id integer NOT NULL,
    idle_since double precision,
    last_sample_at double precision,
    last_util double precision,
    samples integer NOT NULL,
    warnings integer NOT NULL
);
CREATE TABLE nsml_v1_dump.job (
    id integer NOT NULL,
    session_id integer NOT NULL,
    cluster character varying(64) NOT NULL,
    job_id character varying(64) NOT NULL,
    state character varying(32) NOT NULL,
    reason character varying(200),
    exit_code integer,
    submitted_at double precision,
    started_at double precision,
    ended_at double precision,
    elapsed_s double precision,
    node_list text
);
CREATE SEQUENCE nsml_v1_dump.job_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE nsml_v1_dump.job_id_seq OWNED BY nsml_v1_dump.job.id;
CREATE TABLE nsml_v1_dump.job_run (
    id integer NOT NULL,
    session_id integer NOT NULL,
    job_id character varying(64) NOT NULL,
    restart_count integer NOT NULL,
    started_at double precision,
    ended_at double precision,
    host character varying(200),
    exit_code integer,
    outcome character varying(32),
    first_line integer NOT NULL,
    resume_tag character varying(128),
    resume_step integer,
    first_step integer,
    supersede_from_step integer
);
CREATE SEQUENCE nsml_v1_dump.job_run_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE nsml_v1_dump.job_run_id_seq OWNED BY nsml_v1_dump.job_run.id;
CREATE TABLE nsml_v1_dump.lineage (
    child_session_id integer NOT NULL,
    parent_session_id integer,
    parent_name character varying(200) NOT NULL,
    parent_tag character varying(128) NOT NULL,
    parent_step integer,
    parent_snapshot_path text NOT NULL,
    overrides_json text NOT NULL,
    created_at double precision NOT NULL
);
CREATE TABLE nsml_v1_dump.metric_block (
    session_id integer NOT NULL,
    name character varying(200) NOT NULL,
    block integer NOT NULL,
    points integer NOT NULL,
    last_line integer NOT NULL,
    last_step integer,
    last_value double precision,
    min_value double precision,
    min_step integer,
    max_value double precision,
    max_step integer
);
CREATE TABLE nsml_v1_dump.metric_point (
    id integer NOT NULL,
    session_id integer NOT NULL,
    line integer NOT NULL,
    step integer,
    "time" double precision,
    name character varying(200) NOT NULL,
    value double precision
);
CREATE SEQUENCE nsml_v1_dump.metric_point_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE nsml_v1_dump.metric_point_id_seq OWNED BY nsml_v1_dump.metric_point.id;
CREATE TABLE nsml_v1_dump.metric_source (
    session_id integer NOT NULL,
    name character varying(200) NOT NULL,
    source text NOT NULL
);
CREATE TABLE nsml_v1_dump.metric_summary (
    session_id integer NOT NULL,
    name character varying(200) NOT NULL,
    points integer NOT NULL,
    last_line integer NOT NULL,
    last_step integer,
    last_value double precision,
    min_value double precision,
    min_step integer,
    max_value double precision,
    max_step integer
);
CREATE TABLE nsml_v1_dump.scrape_cursor (
    session_id integer NOT NULL,
    file character varying(200) NOT NULL,
    "offset" integer NOT NULL,
    lines integer NOT NULL,
    malformed integer NOT NULL,
    updated_at double precision NOT NULL
);
CREATE TABLE nsml_v1_dump.session (
    name character varying(200) NOT NULL,
    project character varying(64) NOT NULL,
    number integer NOT NULL,
    "user" character varying(64) NOT NULL,
    cluster character varying(64) NOT NULL,
    state character varying(32) NOT NULL,
    reason character varying(200),
    exit_code integer,
    run_dir text NOT NULL,
    spec_json text NOT NULL,
    hyperparameters_json text NOT NULL,
    memo text NOT NULL,
    gpus integer NOT NULL,
    created_at double precision NOT NULL,
    submitted_at double precision,
    started_at double precision,
    ended_at double precision,
    elapsed_s double precision,
    last_step integer,
    last_metrics_json text NOT NULL,
    metric_count integer NOT NULL,
    malformed_lines integer NOT NULL,
    updated_at double precision NOT NULL,
    id integer NOT NULL
);
CREATE SEQUENCE nsml_v1_dump.session_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE nsml_v1_dump.session_id_seq OWNED BY nsml_v1_dump.session.id;
CREATE TABLE nsml_v1_dump.snapshot (
    id integer NOT NULL,
    session_id integer NOT NULL,
    tag character varying(128) NOT NULL,
    step integer,
    metrics_json text NOT NULL,
    bytes bigint NOT NULL,
    file_count integer NOT NULL,
    created_at double precision NOT NULL,
    job_id character varying(64),
    restart_count integer NOT NULL,
    pinned boolean NOT NULL,
    forked_from boolean NOT NULL,
    deleting boolean NOT NULL,
    problem text,
    dir_mtime_ns bigint NOT NULL,
    seen_at double precision NOT NULL
);
CREATE SEQUENCE nsml_v1_dump.snapshot_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE nsml_v1_dump.snapshot_id_seq OWNED BY nsml_v1_dump.snapshot.id;
CREATE TABLE nsml_v1_dump.snapshot_scan (
    session_id integer NOT NULL,
    dir_mtime_ns bigint NOT NULL,
    scanned_at double precision NOT NULL
);
CREATE TABLE nsml_v1_dump.state_change (
    id integer NOT NULL,
    session_id integer NOT NULL,
    at double precision NOT NULL,
    state character varying(32) NOT NULL,
    reason character varying(200),
    job_id character varying(64)
);
CREATE SEQUENCE nsml_v1_dump.state_change_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE nsml_v1_dump.state_change_id_seq OWNED BY nsml_v1_dump.state_change.id;
ALTER TABLE ONLY nsml_v1_dump.event ALTER COLUMN id SET DEFAULT nextval('nsml_v1_dump.event_id_seq'::regclass);
ALTER TABLE ONLY nsml_v1_dump.job ALTER COLUMN id SET DEFAULT nextval('nsml_v1_dump.job_id_seq'::regclass);
ALTER TABLE ONLY nsml_v1_dump.job_run ALTER COLUMN id SET DEFAULT nextval('nsml_v1_dump.job_run_id_seq'::regclass);
ALTER TABLE ONLY nsml_v1_dump.metric_point ALTER COLUMN id SET DEFAULT nextval('nsml_v1_dump.metric_point_id_seq'::regclass);
ALTER TABLE ONLY nsml_v1_dump.session ALTER COLUMN id SET DEFAULT nextval('nsml_v1_dump.session_id_seq'::regclass);
ALTER TABLE ONLY nsml_v1_dump.snapshot ALTER COLUMN id SET DEFAULT nextval('nsml_v1_dump.snapshot_id_seq'::regclass);
ALTER TABLE ONLY nsml_v1_dump.state_change ALTER COLUMN id SET DEFAULT nextval('nsml_v1_dump.state_change_id_seq'::regclass);
INSERT INTO nsml_v1_dump.catalog_meta VALUES ('schema_version', '1');
INSERT INTO nsml_v1_dump.catalog_meta VALUES ('metric_summary_filled', '1');
INSERT INTO nsml_v1_dump.cluster_info_cache VALUES ('local', 'alice', 1796000000, NULL, '{}', NULL, NULL);
INSERT INTO nsml_v1_dump.cluster_poll VALUES ('local', 1796000099, true, NULL, 7);
INSERT INTO nsml_v1_dump.event VALUES (1, 1, 1796000005, 'started', '40', '{"host": "vm", "job_id": "40"}');
INSERT INTO nsml_v1_dump.event VALUES (2, 1, 1796000100, 'ended', NULL, '{"exit_code": 0}');
INSERT INTO nsml_v1_dump.event VALUES (3, 2, 1796000005, 'started', '40', '{"host": "vm", "job_id": "40"}');
INSERT INTO nsml_v1_dump.event VALUES (4, 3, 1796000005, 'started', '40', '{"host": "vm", "job_id": "40"}');
INSERT INTO nsml_v1_dump.event VALUES (5, 4, 1796000005, 'started', '40', '{"host": "vm", "job_id": "40"}');
INSERT INTO nsml_v1_dump.gpu_usage VALUES (2, NULL, 1796000060, 87, 12, 0);
INSERT INTO nsml_v1_dump.job VALUES (1, 1, 'local', '40', 'COMPLETED', NULL, NULL, 1796000000, NULL, NULL, NULL, 'vm');
INSERT INTO nsml_v1_dump.job VALUES (2, 2, 'local', '41', 'RUNNING', NULL, NULL, 1796000000, NULL, NULL, NULL, 'vm');
INSERT INTO nsml_v1_dump.job VALUES (3, 3, 'local', '42', 'LOST', NULL, NULL, 1796000000, NULL, NULL, NULL, 'vm');
INSERT INTO nsml_v1_dump.job VALUES (4, 4, 'local', '43', 'FAILED', NULL, NULL, 1796000000, NULL, NULL, NULL, 'vm');
INSERT INTO nsml_v1_dump.job_run VALUES (1, 1, '40', 0, 1796000005, 1796000100, 'vm', 0, 'ended', 0, NULL, NULL, NULL, NULL);
INSERT INTO nsml_v1_dump.lineage VALUES (4, 1, 'team/1', 'step-20', 20, '/srv/nsml-runs/alice/team/1/snapshots/step-20', '{"lr": 0.01}', 1796000085);
INSERT INTO nsml_v1_dump.metric_block VALUES (1, 'loss', 0, 30, 29, 29, 0.03333333333333333, 0.03333333333333333, 29, 1, 0);
INSERT INTO nsml_v1_dump.metric_block VALUES (1, 'acc', 0, 30, 29, 29, 0.9666666666666667, 0, 0, 0.9666666666666667, 29);
INSERT INTO nsml_v1_dump.metric_block VALUES (2, 'loss', 0, 30, 29, 29, 0.03333333333333333, 0.03333333333333333, 29, 1, 0);
INSERT INTO nsml_v1_dump.metric_block VALUES (2, 'acc', 0, 30, 29, 29, 0.9666666666666667, 0, 0, 0.9666666666666667, 29);
INSERT INTO nsml_v1_dump.metric_block VALUES (3, 'loss', 0, 30, 29, 29, 0.03333333333333333, 0.03333333333333333, 29, 1, 0);
INSERT INTO nsml_v1_dump.metric_block VALUES (3, 'acc', 0, 30, 29, 29, 0.9666666666666667, 0, 0, 0.9666666666666667, 29);
INSERT INTO nsml_v1_dump.metric_block VALUES (4, 'loss', 0, 30, 29, 29, 0.03333333333333333, 0.03333333333333333, 29, 1, 0);
INSERT INTO nsml_v1_dump.metric_block VALUES (4, 'acc', 0, 30, 29, 29, 0.9666666666666667, 0, 0, 0.9666666666666667, 29);
INSERT INTO nsml_v1_dump.metric_point VALUES (1, 1, 0, 0, 1796000000, 'loss', 1);
INSERT INTO nsml_v1_dump.metric_point VALUES (2, 1, 0, 0, 1796000000, 'acc', 0);
INSERT INTO nsml_v1_dump.metric_point VALUES (3, 1, 1, 1, 1796000001, 'loss', 0.5);
INSERT INTO nsml_v1_dump.metric_point VALUES (4, 1, 1, 1, 1796000001, 'acc', 0.03333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (5, 1, 2, 2, 1796000002, 'loss', 0.3333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (6, 1, 2, 2, 1796000002, 'acc', 0.06666666666666667);
INSERT INTO nsml_v1_dump.metric_point VALUES (7, 1, 3, 3, 1796000003, 'loss', 0.25);
INSERT INTO nsml_v1_dump.metric_point VALUES (8, 1, 3, 3, 1796000003, 'acc', 0.1);
INSERT INTO nsml_v1_dump.metric_point VALUES (9, 1, 4, 4, 1796000004, 'loss', 0.2);
INSERT INTO nsml_v1_dump.metric_point VALUES (10, 1, 4, 4, 1796000004, 'acc', 0.13333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (11, 1, 5, 5, 1796000005, 'loss', 0.16666666666666666);
INSERT INTO nsml_v1_dump.metric_point VALUES (12, 1, 5, 5, 1796000005, 'acc', 0.16666666666666666);
INSERT INTO nsml_v1_dump.metric_point VALUES (13, 1, 6, 6, 1796000006, 'loss', 0.14285714285714285);
INSERT INTO nsml_v1_dump.metric_point VALUES (14, 1, 6, 6, 1796000006, 'acc', 0.2);
INSERT INTO nsml_v1_dump.metric_point VALUES (15, 1, 7, 7, 1796000007, 'loss', 0.125);
INSERT INTO nsml_v1_dump.metric_point VALUES (16, 1, 7, 7, 1796000007, 'acc', 0.23333333333333334);
INSERT INTO nsml_v1_dump.metric_point VALUES (17, 1, 8, 8, 1796000008, 'loss', 0.1111111111111111);
INSERT INTO nsml_v1_dump.metric_point VALUES (18, 1, 8, 8, 1796000008, 'acc', 0.26666666666666666);
INSERT INTO nsml_v1_dump.metric_point VALUES (19, 1, 9, 9, 1796000009, 'loss', 0.1);
INSERT INTO nsml_v1_dump.metric_point VALUES (20, 1, 9, 9, 1796000009, 'acc', 0.3);
INSERT INTO nsml_v1_dump.metric_point VALUES (21, 1, 10, 10, 1796000010, 'loss', 0.09090909090909091);
INSERT INTO nsml_v1_dump.metric_point VALUES (22, 1, 10, 10, 1796000010, 'acc', 0.3333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (23, 1, 11, 11, 1796000011, 'loss', 0.08333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (24, 1, 11, 11, 1796000011, 'acc', 0.36666666666666664);
INSERT INTO nsml_v1_dump.metric_point VALUES (25, 1, 12, 12, 1796000012, 'loss', 0.07692307692307693);
INSERT INTO nsml_v1_dump.metric_point VALUES (26, 1, 12, 12, 1796000012, 'acc', 0.4);
INSERT INTO nsml_v1_dump.metric_point VALUES (27, 1, 13, 13, 1796000013, 'loss', 0.07142857142857142);
INSERT INTO nsml_v1_dump.metric_point VALUES (28, 1, 13, 13, 1796000013, 'acc', 0.43333333333333335);
INSERT INTO nsml_v1_dump.metric_point VALUES (29, 1, 14, 14, 1796000014, 'loss', 0.06666666666666667);
INSERT INTO nsml_v1_dump.metric_point VALUES (30, 1, 14, 14, 1796000014, 'acc', 0.4666666666666667);
INSERT INTO nsml_v1_dump.metric_point VALUES (31, 1, 15, 15, 1796000015, 'loss', 0.0625);
INSERT INTO nsml_v1_dump.metric_point VALUES (32, 1, 15, 15, 1796000015, 'acc', 0.5);
INSERT INTO nsml_v1_dump.metric_point VALUES (33, 1, 16, 16, 1796000016, 'loss', 0.058823529411764705);
INSERT INTO nsml_v1_dump.metric_point VALUES (34, 1, 16, 16, 1796000016, 'acc', 0.5333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (35, 1, 17, 17, 1796000017, 'loss', 0.05555555555555555);
INSERT INTO nsml_v1_dump.metric_point VALUES (36, 1, 17, 17, 1796000017, 'acc', 0.5666666666666667);
INSERT INTO nsml_v1_dump.metric_point VALUES (37, 1, 18, 18, 1796000018, 'loss', 0.05263157894736842);
INSERT INTO nsml_v1_dump.metric_point VALUES (38, 1, 18, 18, 1796000018, 'acc', 0.6);
INSERT INTO nsml_v1_dump.metric_point VALUES (39, 1, 19, 19, 1796000019, 'loss', 0.05);
INSERT INTO nsml_v1_dump.metric_point VALUES (40, 1, 19, 19, 1796000019, 'acc', 0.6333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (41, 1, 20, 20, 1796000020, 'loss', 0.047619047619047616);
INSERT INTO nsml_v1_dump.metric_point VALUES (42, 1, 20, 20, 1796000020, 'acc', 0.6666666666666666);
INSERT INTO nsml_v1_dump.metric_point VALUES (43, 1, 21, 21, 1796000021, 'loss', 0.045454545454545456);
INSERT INTO nsml_v1_dump.metric_point VALUES (44, 1, 21, 21, 1796000021, 'acc', 0.7);
INSERT INTO nsml_v1_dump.metric_point VALUES (45, 1, 22, 22, 1796000022, 'loss', 0.043478260869565216);
INSERT INTO nsml_v1_dump.metric_point VALUES (46, 1, 22, 22, 1796000022, 'acc', 0.7333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (47, 1, 23, 23, 1796000023, 'loss', 0.041666666666666664);
INSERT INTO nsml_v1_dump.metric_point VALUES (48, 1, 23, 23, 1796000023, 'acc', 0.7666666666666667);
INSERT INTO nsml_v1_dump.metric_point VALUES (49, 1, 24, 24, 1796000024, 'loss', 0.04);
INSERT INTO nsml_v1_dump.metric_point VALUES (50, 1, 24, 24, 1796000024, 'acc', 0.8);
INSERT INTO nsml_v1_dump.metric_point VALUES (51, 1, 25, 25, 1796000025, 'loss', 0.038461538461538464);
INSERT INTO nsml_v1_dump.metric_point VALUES (52, 1, 25, 25, 1796000025, 'acc', 0.8333333333333334);
INSERT INTO nsml_v1_dump.metric_point VALUES (53, 1, 26, 26, 1796000026, 'loss', 0.037037037037037035);
INSERT INTO nsml_v1_dump.metric_point VALUES (54, 1, 26, 26, 1796000026, 'acc', 0.8666666666666667);
INSERT INTO nsml_v1_dump.metric_point VALUES (55, 1, 27, 27, 1796000027, 'loss', 0.03571428571428571);
INSERT INTO nsml_v1_dump.metric_point VALUES (56, 1, 27, 27, 1796000027, 'acc', 0.9);
INSERT INTO nsml_v1_dump.metric_point VALUES (57, 1, 28, 28, 1796000028, 'loss', 0.034482758620689655);
INSERT INTO nsml_v1_dump.metric_point VALUES (58, 1, 28, 28, 1796000028, 'acc', 0.9333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (59, 1, 29, 29, 1796000029, 'loss', 0.03333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (60, 1, 29, 29, 1796000029, 'acc', 0.9666666666666667);
INSERT INTO nsml_v1_dump.metric_point VALUES (61, 2, 0, 0, 1796000000, 'loss', 1);
INSERT INTO nsml_v1_dump.metric_point VALUES (62, 2, 0, 0, 1796000000, 'acc', 0);
INSERT INTO nsml_v1_dump.metric_point VALUES (63, 2, 1, 1, 1796000001, 'loss', 0.5);
INSERT INTO nsml_v1_dump.metric_point VALUES (64, 2, 1, 1, 1796000001, 'acc', 0.03333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (65, 2, 2, 2, 1796000002, 'loss', 0.3333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (66, 2, 2, 2, 1796000002, 'acc', 0.06666666666666667);
INSERT INTO nsml_v1_dump.metric_point VALUES (67, 2, 3, 3, 1796000003, 'loss', 0.25);
INSERT INTO nsml_v1_dump.metric_point VALUES (68, 2, 3, 3, 1796000003, 'acc', 0.1);
INSERT INTO nsml_v1_dump.metric_point VALUES (69, 2, 4, 4, 1796000004, 'loss', 0.2);
INSERT INTO nsml_v1_dump.metric_point VALUES (70, 2, 4, 4, 1796000004, 'acc', 0.13333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (71, 2, 5, 5, 1796000005, 'loss', 0.16666666666666666);
INSERT INTO nsml_v1_dump.metric_point VALUES (72, 2, 5, 5, 1796000005, 'acc', 0.16666666666666666);
INSERT INTO nsml_v1_dump.metric_point VALUES (73, 2, 6, 6, 1796000006, 'loss', 0.14285714285714285);
INSERT INTO nsml_v1_dump.metric_point VALUES (74, 2, 6, 6, 1796000006, 'acc', 0.2);
INSERT INTO nsml_v1_dump.metric_point VALUES (75, 2, 7, 7, 1796000007, 'loss', 0.125);
INSERT INTO nsml_v1_dump.metric_point VALUES (76, 2, 7, 7, 1796000007, 'acc', 0.23333333333333334);
INSERT INTO nsml_v1_dump.metric_point VALUES (77, 2, 8, 8, 1796000008, 'loss', 0.1111111111111111);
INSERT INTO nsml_v1_dump.metric_point VALUES (78, 2, 8, 8, 1796000008, 'acc', 0.26666666666666666);
INSERT INTO nsml_v1_dump.metric_point VALUES (79, 2, 9, 9, 1796000009, 'loss', 0.1);
INSERT INTO nsml_v1_dump.metric_point VALUES (80, 2, 9, 9, 1796000009, 'acc', 0.3);
INSERT INTO nsml_v1_dump.metric_point VALUES (81, 2, 10, 10, 1796000010, 'loss', 0.09090909090909091);
INSERT INTO nsml_v1_dump.metric_point VALUES (82, 2, 10, 10, 1796000010, 'acc', 0.3333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (83, 2, 11, 11, 1796000011, 'loss', 0.08333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (84, 2, 11, 11, 1796000011, 'acc', 0.36666666666666664);
INSERT INTO nsml_v1_dump.metric_point VALUES (85, 2, 12, 12, 1796000012, 'loss', 0.07692307692307693);
INSERT INTO nsml_v1_dump.metric_point VALUES (86, 2, 12, 12, 1796000012, 'acc', 0.4);
INSERT INTO nsml_v1_dump.metric_point VALUES (87, 2, 13, 13, 1796000013, 'loss', 0.07142857142857142);
INSERT INTO nsml_v1_dump.metric_point VALUES (88, 2, 13, 13, 1796000013, 'acc', 0.43333333333333335);
INSERT INTO nsml_v1_dump.metric_point VALUES (89, 2, 14, 14, 1796000014, 'loss', 0.06666666666666667);
INSERT INTO nsml_v1_dump.metric_point VALUES (90, 2, 14, 14, 1796000014, 'acc', 0.4666666666666667);
INSERT INTO nsml_v1_dump.metric_point VALUES (91, 2, 15, 15, 1796000015, 'loss', 0.0625);
INSERT INTO nsml_v1_dump.metric_point VALUES (92, 2, 15, 15, 1796000015, 'acc', 0.5);
INSERT INTO nsml_v1_dump.metric_point VALUES (93, 2, 16, 16, 1796000016, 'loss', 0.058823529411764705);
INSERT INTO nsml_v1_dump.metric_point VALUES (94, 2, 16, 16, 1796000016, 'acc', 0.5333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (95, 2, 17, 17, 1796000017, 'loss', 0.05555555555555555);
INSERT INTO nsml_v1_dump.metric_point VALUES (96, 2, 17, 17, 1796000017, 'acc', 0.5666666666666667);
INSERT INTO nsml_v1_dump.metric_point VALUES (97, 2, 18, 18, 1796000018, 'loss', 0.05263157894736842);
INSERT INTO nsml_v1_dump.metric_point VALUES (98, 2, 18, 18, 1796000018, 'acc', 0.6);
INSERT INTO nsml_v1_dump.metric_point VALUES (99, 2, 19, 19, 1796000019, 'loss', 0.05);
INSERT INTO nsml_v1_dump.metric_point VALUES (100, 2, 19, 19, 1796000019, 'acc', 0.6333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (101, 2, 20, 20, 1796000020, 'loss', 0.047619047619047616);
INSERT INTO nsml_v1_dump.metric_point VALUES (102, 2, 20, 20, 1796000020, 'acc', 0.6666666666666666);
INSERT INTO nsml_v1_dump.metric_point VALUES (103, 2, 21, 21, 1796000021, 'loss', 0.045454545454545456);
INSERT INTO nsml_v1_dump.metric_point VALUES (104, 2, 21, 21, 1796000021, 'acc', 0.7);
INSERT INTO nsml_v1_dump.metric_point VALUES (105, 2, 22, 22, 1796000022, 'loss', 0.043478260869565216);
INSERT INTO nsml_v1_dump.metric_point VALUES (106, 2, 22, 22, 1796000022, 'acc', 0.7333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (107, 2, 23, 23, 1796000023, 'loss', 0.041666666666666664);
INSERT INTO nsml_v1_dump.metric_point VALUES (108, 2, 23, 23, 1796000023, 'acc', 0.7666666666666667);
INSERT INTO nsml_v1_dump.metric_point VALUES (109, 2, 24, 24, 1796000024, 'loss', 0.04);
INSERT INTO nsml_v1_dump.metric_point VALUES (110, 2, 24, 24, 1796000024, 'acc', 0.8);
INSERT INTO nsml_v1_dump.metric_point VALUES (111, 2, 25, 25, 1796000025, 'loss', 0.038461538461538464);
INSERT INTO nsml_v1_dump.metric_point VALUES (112, 2, 25, 25, 1796000025, 'acc', 0.8333333333333334);
INSERT INTO nsml_v1_dump.metric_point VALUES (113, 2, 26, 26, 1796000026, 'loss', 0.037037037037037035);
INSERT INTO nsml_v1_dump.metric_point VALUES (114, 2, 26, 26, 1796000026, 'acc', 0.8666666666666667);
INSERT INTO nsml_v1_dump.metric_point VALUES (115, 2, 27, 27, 1796000027, 'loss', 0.03571428571428571);
INSERT INTO nsml_v1_dump.metric_point VALUES (116, 2, 27, 27, 1796000027, 'acc', 0.9);
INSERT INTO nsml_v1_dump.metric_point VALUES (117, 2, 28, 28, 1796000028, 'loss', 0.034482758620689655);
INSERT INTO nsml_v1_dump.metric_point VALUES (118, 2, 28, 28, 1796000028, 'acc', 0.9333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (119, 2, 29, 29, 1796000029, 'loss', 0.03333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (120, 2, 29, 29, 1796000029, 'acc', 0.9666666666666667);
INSERT INTO nsml_v1_dump.metric_point VALUES (121, 3, 0, 0, 1796000000, 'loss', 1);
INSERT INTO nsml_v1_dump.metric_point VALUES (122, 3, 0, 0, 1796000000, 'acc', 0);
INSERT INTO nsml_v1_dump.metric_point VALUES (123, 3, 1, 1, 1796000001, 'loss', 0.5);
INSERT INTO nsml_v1_dump.metric_point VALUES (124, 3, 1, 1, 1796000001, 'acc', 0.03333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (125, 3, 2, 2, 1796000002, 'loss', 0.3333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (126, 3, 2, 2, 1796000002, 'acc', 0.06666666666666667);
INSERT INTO nsml_v1_dump.metric_point VALUES (127, 3, 3, 3, 1796000003, 'loss', 0.25);
INSERT INTO nsml_v1_dump.metric_point VALUES (128, 3, 3, 3, 1796000003, 'acc', 0.1);
INSERT INTO nsml_v1_dump.metric_point VALUES (129, 3, 4, 4, 1796000004, 'loss', 0.2);
INSERT INTO nsml_v1_dump.metric_point VALUES (130, 3, 4, 4, 1796000004, 'acc', 0.13333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (131, 3, 5, 5, 1796000005, 'loss', 0.16666666666666666);
INSERT INTO nsml_v1_dump.metric_point VALUES (132, 3, 5, 5, 1796000005, 'acc', 0.16666666666666666);
INSERT INTO nsml_v1_dump.metric_point VALUES (133, 3, 6, 6, 1796000006, 'loss', 0.14285714285714285);
INSERT INTO nsml_v1_dump.metric_point VALUES (134, 3, 6, 6, 1796000006, 'acc', 0.2);
INSERT INTO nsml_v1_dump.metric_point VALUES (135, 3, 7, 7, 1796000007, 'loss', 0.125);
INSERT INTO nsml_v1_dump.metric_point VALUES (136, 3, 7, 7, 1796000007, 'acc', 0.23333333333333334);
INSERT INTO nsml_v1_dump.metric_point VALUES (137, 3, 8, 8, 1796000008, 'loss', 0.1111111111111111);
INSERT INTO nsml_v1_dump.metric_point VALUES (138, 3, 8, 8, 1796000008, 'acc', 0.26666666666666666);
INSERT INTO nsml_v1_dump.metric_point VALUES (139, 3, 9, 9, 1796000009, 'loss', 0.1);
INSERT INTO nsml_v1_dump.metric_point VALUES (140, 3, 9, 9, 1796000009, 'acc', 0.3);
INSERT INTO nsml_v1_dump.metric_point VALUES (141, 3, 10, 10, 1796000010, 'loss', 0.09090909090909091);
INSERT INTO nsml_v1_dump.metric_point VALUES (142, 3, 10, 10, 1796000010, 'acc', 0.3333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (143, 3, 11, 11, 1796000011, 'loss', 0.08333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (144, 3, 11, 11, 1796000011, 'acc', 0.36666666666666664);
INSERT INTO nsml_v1_dump.metric_point VALUES (145, 3, 12, 12, 1796000012, 'loss', 0.07692307692307693);
INSERT INTO nsml_v1_dump.metric_point VALUES (146, 3, 12, 12, 1796000012, 'acc', 0.4);
INSERT INTO nsml_v1_dump.metric_point VALUES (147, 3, 13, 13, 1796000013, 'loss', 0.07142857142857142);
INSERT INTO nsml_v1_dump.metric_point VALUES (148, 3, 13, 13, 1796000013, 'acc', 0.43333333333333335);
INSERT INTO nsml_v1_dump.metric_point VALUES (149, 3, 14, 14, 1796000014, 'loss', 0.06666666666666667);
INSERT INTO nsml_v1_dump.metric_point VALUES (150, 3, 14, 14, 1796000014, 'acc', 0.4666666666666667);
INSERT INTO nsml_v1_dump.metric_point VALUES (151, 3, 15, 15, 1796000015, 'loss', 0.0625);
INSERT INTO nsml_v1_dump.metric_point VALUES (152, 3, 15, 15, 1796000015, 'acc', 0.5);
INSERT INTO nsml_v1_dump.metric_point VALUES (153, 3, 16, 16, 1796000016, 'loss', 0.058823529411764705);
INSERT INTO nsml_v1_dump.metric_point VALUES (154, 3, 16, 16, 1796000016, 'acc', 0.5333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (155, 3, 17, 17, 1796000017, 'loss', 0.05555555555555555);
INSERT INTO nsml_v1_dump.metric_point VALUES (156, 3, 17, 17, 1796000017, 'acc', 0.5666666666666667);
INSERT INTO nsml_v1_dump.metric_point VALUES (157, 3, 18, 18, 1796000018, 'loss', 0.05263157894736842);
INSERT INTO nsml_v1_dump.metric_point VALUES (158, 3, 18, 18, 1796000018, 'acc', 0.6);
INSERT INTO nsml_v1_dump.metric_point VALUES (159, 3, 19, 19, 1796000019, 'loss', 0.05);
INSERT INTO nsml_v1_dump.metric_point VALUES (160, 3, 19, 19, 1796000019, 'acc', 0.6333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (161, 3, 20, 20, 1796000020, 'loss', 0.047619047619047616);
INSERT INTO nsml_v1_dump.metric_point VALUES (162, 3, 20, 20, 1796000020, 'acc', 0.6666666666666666);
INSERT INTO nsml_v1_dump.metric_point VALUES (163, 3, 21, 21, 1796000021, 'loss', 0.045454545454545456);
INSERT INTO nsml_v1_dump.metric_point VALUES (164, 3, 21, 21, 1796000021, 'acc', 0.7);
INSERT INTO nsml_v1_dump.metric_point VALUES (165, 3, 22, 22, 1796000022, 'loss', 0.043478260869565216);
INSERT INTO nsml_v1_dump.metric_point VALUES (166, 3, 22, 22, 1796000022, 'acc', 0.7333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (167, 3, 23, 23, 1796000023, 'loss', 0.041666666666666664);
INSERT INTO nsml_v1_dump.metric_point VALUES (168, 3, 23, 23, 1796000023, 'acc', 0.7666666666666667);
INSERT INTO nsml_v1_dump.metric_point VALUES (169, 3, 24, 24, 1796000024, 'loss', 0.04);
INSERT INTO nsml_v1_dump.metric_point VALUES (170, 3, 24, 24, 1796000024, 'acc', 0.8);
INSERT INTO nsml_v1_dump.metric_point VALUES (171, 3, 25, 25, 1796000025, 'loss', 0.038461538461538464);
INSERT INTO nsml_v1_dump.metric_point VALUES (172, 3, 25, 25, 1796000025, 'acc', 0.8333333333333334);
INSERT INTO nsml_v1_dump.metric_point VALUES (173, 3, 26, 26, 1796000026, 'loss', 0.037037037037037035);
INSERT INTO nsml_v1_dump.metric_point VALUES (174, 3, 26, 26, 1796000026, 'acc', 0.8666666666666667);
INSERT INTO nsml_v1_dump.metric_point VALUES (175, 3, 27, 27, 1796000027, 'loss', 0.03571428571428571);
INSERT INTO nsml_v1_dump.metric_point VALUES (176, 3, 27, 27, 1796000027, 'acc', 0.9);
INSERT INTO nsml_v1_dump.metric_point VALUES (177, 3, 28, 28, 1796000028, 'loss', 0.034482758620689655);
INSERT INTO nsml_v1_dump.metric_point VALUES (178, 3, 28, 28, 1796000028, 'acc', 0.9333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (179, 3, 29, 29, 1796000029, 'loss', 0.03333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (180, 3, 29, 29, 1796000029, 'acc', 0.9666666666666667);
INSERT INTO nsml_v1_dump.metric_point VALUES (181, 4, 0, 0, 1796000000, 'loss', 1);
INSERT INTO nsml_v1_dump.metric_point VALUES (182, 4, 0, 0, 1796000000, 'acc', 0);
INSERT INTO nsml_v1_dump.metric_point VALUES (183, 4, 1, 1, 1796000001, 'loss', 0.5);
INSERT INTO nsml_v1_dump.metric_point VALUES (184, 4, 1, 1, 1796000001, 'acc', 0.03333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (185, 4, 2, 2, 1796000002, 'loss', 0.3333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (186, 4, 2, 2, 1796000002, 'acc', 0.06666666666666667);
INSERT INTO nsml_v1_dump.metric_point VALUES (187, 4, 3, 3, 1796000003, 'loss', 0.25);
INSERT INTO nsml_v1_dump.metric_point VALUES (188, 4, 3, 3, 1796000003, 'acc', 0.1);
INSERT INTO nsml_v1_dump.metric_point VALUES (189, 4, 4, 4, 1796000004, 'loss', 0.2);
INSERT INTO nsml_v1_dump.metric_point VALUES (190, 4, 4, 4, 1796000004, 'acc', 0.13333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (191, 4, 5, 5, 1796000005, 'loss', 0.16666666666666666);
INSERT INTO nsml_v1_dump.metric_point VALUES (192, 4, 5, 5, 1796000005, 'acc', 0.16666666666666666);
INSERT INTO nsml_v1_dump.metric_point VALUES (193, 4, 6, 6, 1796000006, 'loss', 0.14285714285714285);
INSERT INTO nsml_v1_dump.metric_point VALUES (194, 4, 6, 6, 1796000006, 'acc', 0.2);
INSERT INTO nsml_v1_dump.metric_point VALUES (195, 4, 7, 7, 1796000007, 'loss', 0.125);
INSERT INTO nsml_v1_dump.metric_point VALUES (196, 4, 7, 7, 1796000007, 'acc', 0.23333333333333334);
INSERT INTO nsml_v1_dump.metric_point VALUES (197, 4, 8, 8, 1796000008, 'loss', 0.1111111111111111);
INSERT INTO nsml_v1_dump.metric_point VALUES (198, 4, 8, 8, 1796000008, 'acc', 0.26666666666666666);
INSERT INTO nsml_v1_dump.metric_point VALUES (199, 4, 9, 9, 1796000009, 'loss', 0.1);
INSERT INTO nsml_v1_dump.metric_point VALUES (200, 4, 9, 9, 1796000009, 'acc', 0.3);
INSERT INTO nsml_v1_dump.metric_point VALUES (201, 4, 10, 10, 1796000010, 'loss', 0.09090909090909091);
INSERT INTO nsml_v1_dump.metric_point VALUES (202, 4, 10, 10, 1796000010, 'acc', 0.3333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (203, 4, 11, 11, 1796000011, 'loss', 0.08333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (204, 4, 11, 11, 1796000011, 'acc', 0.36666666666666664);
INSERT INTO nsml_v1_dump.metric_point VALUES (205, 4, 12, 12, 1796000012, 'loss', 0.07692307692307693);
INSERT INTO nsml_v1_dump.metric_point VALUES (206, 4, 12, 12, 1796000012, 'acc', 0.4);
INSERT INTO nsml_v1_dump.metric_point VALUES (207, 4, 13, 13, 1796000013, 'loss', 0.07142857142857142);
INSERT INTO nsml_v1_dump.metric_point VALUES (208, 4, 13, 13, 1796000013, 'acc', 0.43333333333333335);
INSERT INTO nsml_v1_dump.metric_point VALUES (209, 4, 14, 14, 1796000014, 'loss', 0.06666666666666667);
INSERT INTO nsml_v1_dump.metric_point VALUES (210, 4, 14, 14, 1796000014, 'acc', 0.4666666666666667);
INSERT INTO nsml_v1_dump.metric_point VALUES (211, 4, 15, 15, 1796000015, 'loss', 0.0625);
INSERT INTO nsml_v1_dump.metric_point VALUES (212, 4, 15, 15, 1796000015, 'acc', 0.5);
INSERT INTO nsml_v1_dump.metric_point VALUES (213, 4, 16, 16, 1796000016, 'loss', 0.058823529411764705);
INSERT INTO nsml_v1_dump.metric_point VALUES (214, 4, 16, 16, 1796000016, 'acc', 0.5333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (215, 4, 17, 17, 1796000017, 'loss', 0.05555555555555555);
INSERT INTO nsml_v1_dump.metric_point VALUES (216, 4, 17, 17, 1796000017, 'acc', 0.5666666666666667);
INSERT INTO nsml_v1_dump.metric_point VALUES (217, 4, 18, 18, 1796000018, 'loss', 0.05263157894736842);
INSERT INTO nsml_v1_dump.metric_point VALUES (218, 4, 18, 18, 1796000018, 'acc', 0.6);
INSERT INTO nsml_v1_dump.metric_point VALUES (219, 4, 19, 19, 1796000019, 'loss', 0.05);
INSERT INTO nsml_v1_dump.metric_point VALUES (220, 4, 19, 19, 1796000019, 'acc', 0.6333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (221, 4, 20, 20, 1796000020, 'loss', 0.047619047619047616);
INSERT INTO nsml_v1_dump.metric_point VALUES (222, 4, 20, 20, 1796000020, 'acc', 0.6666666666666666);
INSERT INTO nsml_v1_dump.metric_point VALUES (223, 4, 21, 21, 1796000021, 'loss', 0.045454545454545456);
INSERT INTO nsml_v1_dump.metric_point VALUES (224, 4, 21, 21, 1796000021, 'acc', 0.7);
INSERT INTO nsml_v1_dump.metric_point VALUES (225, 4, 22, 22, 1796000022, 'loss', 0.043478260869565216);
INSERT INTO nsml_v1_dump.metric_point VALUES (226, 4, 22, 22, 1796000022, 'acc', 0.7333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (227, 4, 23, 23, 1796000023, 'loss', 0.041666666666666664);
INSERT INTO nsml_v1_dump.metric_point VALUES (228, 4, 23, 23, 1796000023, 'acc', 0.7666666666666667);
INSERT INTO nsml_v1_dump.metric_point VALUES (229, 4, 24, 24, 1796000024, 'loss', 0.04);
INSERT INTO nsml_v1_dump.metric_point VALUES (230, 4, 24, 24, 1796000024, 'acc', 0.8);
INSERT INTO nsml_v1_dump.metric_point VALUES (231, 4, 25, 25, 1796000025, 'loss', 0.038461538461538464);
INSERT INTO nsml_v1_dump.metric_point VALUES (232, 4, 25, 25, 1796000025, 'acc', 0.8333333333333334);
INSERT INTO nsml_v1_dump.metric_point VALUES (233, 4, 26, 26, 1796000026, 'loss', 0.037037037037037035);
INSERT INTO nsml_v1_dump.metric_point VALUES (234, 4, 26, 26, 1796000026, 'acc', 0.8666666666666667);
INSERT INTO nsml_v1_dump.metric_point VALUES (235, 4, 27, 27, 1796000027, 'loss', 0.03571428571428571);
INSERT INTO nsml_v1_dump.metric_point VALUES (236, 4, 27, 27, 1796000027, 'acc', 0.9);
INSERT INTO nsml_v1_dump.metric_point VALUES (237, 4, 28, 28, 1796000028, 'loss', 0.034482758620689655);
INSERT INTO nsml_v1_dump.metric_point VALUES (238, 4, 28, 28, 1796000028, 'acc', 0.9333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (239, 4, 29, 29, 1796000029, 'loss', 0.03333333333333333);
INSERT INTO nsml_v1_dump.metric_point VALUES (240, 4, 29, 29, 1796000029, 'acc', 0.9666666666666667);
INSERT INTO nsml_v1_dump.metric_source VALUES (1, 'tb/acc', 'tensorboard:events.out');
INSERT INTO nsml_v1_dump.metric_summary VALUES (1, 'loss', 30, 29, 29, 0.03333333333333333, 0.03333333333333333, 29, 1, 0);
INSERT INTO nsml_v1_dump.metric_summary VALUES (1, 'acc', 30, 29, 29, 0.9666666666666667, 0, 0, 0.9666666666666667, 29);
INSERT INTO nsml_v1_dump.metric_summary VALUES (2, 'loss', 30, 29, 29, 0.03333333333333333, 0.03333333333333333, 29, 1, 0);
INSERT INTO nsml_v1_dump.metric_summary VALUES (2, 'acc', 30, 29, 29, 0.9666666666666667, 0, 0, 0.9666666666666667, 29);
INSERT INTO nsml_v1_dump.metric_summary VALUES (3, 'loss', 30, 29, 29, 0.03333333333333333, 0.03333333333333333, 29, 1, 0);
INSERT INTO nsml_v1_dump.metric_summary VALUES (3, 'acc', 30, 29, 29, 0.9666666666666667, 0, 0, 0.9666666666666667, 29);
INSERT INTO nsml_v1_dump.metric_summary VALUES (4, 'loss', 30, 29, 29, 0.03333333333333333, 0.03333333333333333, 29, 1, 0);
INSERT INTO nsml_v1_dump.metric_summary VALUES (4, 'acc', 30, 29, 29, 0.9666666666666667, 0, 0, 0.9666666666666667, 29);
INSERT INTO nsml_v1_dump.scrape_cursor VALUES (1, 'metrics.jsonl', 2448, 30, 0, 1796000100);
INSERT INTO nsml_v1_dump.scrape_cursor VALUES (1, 'events.jsonl', 130, 2, 0, 1796000100);
INSERT INTO nsml_v1_dump.scrape_cursor VALUES (2, 'metrics.jsonl', 2448, 30, 0, 1796000100);
INSERT INTO nsml_v1_dump.scrape_cursor VALUES (2, 'events.jsonl', 73, 1, 0, 1796000100);
INSERT INTO nsml_v1_dump.scrape_cursor VALUES (3, 'metrics.jsonl', 2448, 30, 0, 1796000100);
INSERT INTO nsml_v1_dump.scrape_cursor VALUES (3, 'events.jsonl', 73, 1, 0, 1796000100);
INSERT INTO nsml_v1_dump.scrape_cursor VALUES (4, 'metrics.jsonl', 2448, 30, 0, 1796000100);
INSERT INTO nsml_v1_dump.scrape_cursor VALUES (4, 'events.jsonl', 73, 1, 0, 1796000100);
INSERT INTO nsml_v1_dump.session VALUES ('team/1', 'team', 1, 'alice', 'local', 'COMPLETED', NULL, NULL, '/srv/nsml-runs/alice/team/1', '{"args": ["--lr", "0.1"], "cluster": "local", "memo": "", "project": "team", "resources": {"gpus": 1, "nodes": 1}, "script": "train.py"}', '{"lr": 0.1}', 'run 1 of alice', 1, 1796000001, 1796000001, 1796000005, 1796000100, NULL, 29, '{"acc": 0.9666666666666667, "loss": 0.03333333333333333}', 60, 0, 1796000100, 1);
INSERT INTO nsml_v1_dump.session VALUES ('team/2', 'team', 2, 'bob', 'local', 'RUNNING', NULL, NULL, '/srv/nsml-runs/bob/team/2', '{"args": ["--lr", "0.05"], "cluster": "local", "memo": "", "project": "team", "resources": {"gpus": 1, "nodes": 1}, "script": "train.py"}', '{"lr": 0.05}', 'run 2 of bob', 1, 1796000002, 1796000002, 1796000006, NULL, NULL, 29, '{"acc": 0.9666666666666667, "loss": 0.03333333333333333}', 60, 0, 1796000100, 2);
INSERT INTO nsml_v1_dump.session VALUES ('team/3', 'team', 3, 'alice', 'local', 'LOST', 'Slurm no longer knows this job', NULL, '/srv/nsml-runs/alice/team/3', '{"args": ["--lr", "0.03333333333333333"], "cluster": "local", "memo": "", "project": "team", "resources": {"gpus": 1, "nodes": 1}, "script": "train.py"}', '{"lr": 0.03333333333333333}', 'run 3 of alice', 1, 1796000003, 1796000003, NULL, 1796000090, NULL, 29, '{"acc": 0.9666666666666667, "loss": 0.03333333333333333}', 60, 0, 1796000100, 3);
INSERT INTO nsml_v1_dump.session VALUES ('mnist/1', 'mnist', 1, 'alice', 'local', 'FAILED', NULL, 3, '/srv/nsml-runs/alice/mnist/1', '{"args": ["--lr", "0.1"], "cluster": "local", "memo": "", "project": "mnist", "resources": {"gpus": 1, "nodes": 1}, "script": "train.py"}', '{"lr": 0.1}', 'run 1 of alice', 1, 1796000001, 1796000001, NULL, 1796000050, NULL, 29, '{"acc": 0.9666666666666667, "loss": 0.03333333333333333}', 60, 0, 1796000100, 4);
INSERT INTO nsml_v1_dump.snapshot VALUES (1, 1, 'step-10', 10, '{"loss": 0.5}', 4096, 2, 1796000040, '40', 0, true, false, false, NULL, 0, 0);
INSERT INTO nsml_v1_dump.snapshot VALUES (2, 1, 'step-20', 20, '{"loss": 0.25}', 8192, 2, 1796000080, '40', 0, false, true, false, NULL, 0, 0);
INSERT INTO nsml_v1_dump.snapshot_scan VALUES (1, 123, 1796000081);
INSERT INTO nsml_v1_dump.state_change VALUES (1, 1, 1796000000, 'SUBMITTED', NULL, '40');
INSERT INTO nsml_v1_dump.state_change VALUES (2, 1, 1796000009, 'COMPLETED', NULL, '40');
INSERT INTO nsml_v1_dump.state_change VALUES (3, 2, 1796000000, 'SUBMITTED', NULL, '41');
INSERT INTO nsml_v1_dump.state_change VALUES (4, 2, 1796000009, 'RUNNING', NULL, '41');
INSERT INTO nsml_v1_dump.state_change VALUES (5, 3, 1796000000, 'SUBMITTED', NULL, '42');
INSERT INTO nsml_v1_dump.state_change VALUES (6, 3, 1796000009, 'LOST', NULL, '42');
INSERT INTO nsml_v1_dump.state_change VALUES (7, 4, 1796000000, 'SUBMITTED', NULL, '43');
INSERT INTO nsml_v1_dump.state_change VALUES (8, 4, 1796000009, 'FAILED', NULL, '43');
SELECT pg_catalog.setval('nsml_v1_dump.event_id_seq', 5, true);
SELECT pg_catalog.setval('nsml_v1_dump.job_id_seq', 4, true);
SELECT pg_catalog.setval('nsml_v1_dump.job_run_id_seq', 1, true);
SELECT pg_catalog.setval('nsml_v1_dump.metric_point_id_seq', 240, true);
SELECT pg_catalog.setval('nsml_v1_dump.session_id_seq', 4, true);
SELECT pg_catalog.setval('nsml_v1_dump.snapshot_id_seq', 2, true);
SELECT pg_catalog.setval('nsml_v1_dump.state_change_id_seq', 8, true);
ALTER TABLE ONLY nsml_v1_dump.catalog_meta
    ADD CONSTRAINT catalog_meta_pkey PRIMARY KEY (key);
ALTER TABLE ONLY nsml_v1_dump.cluster_info_cache
    ADD CONSTRAINT cluster_info_cache_pkey PRIMARY KEY (cluster, "user");
ALTER TABLE ONLY nsml_v1_dump.cluster_poll
    ADD CONSTRAINT cluster_poll_pkey PRIMARY KEY (cluster);
ALTER TABLE ONLY nsml_v1_dump.event
    ADD CONSTRAINT event_pkey PRIMARY KEY (id);
ALTER TABLE ONLY nsml_v1_dump.gpu_usage
    ADD CONSTRAINT gpu_usage_pkey PRIMARY KEY (session_id);
ALTER TABLE ONLY nsml_v1_dump.job
    ADD CONSTRAINT job_pkey PRIMARY KEY (id);
ALTER TABLE ONLY nsml_v1_dump.job_run
    ADD CONSTRAINT job_run_pkey PRIMARY KEY (id);
ALTER TABLE ONLY nsml_v1_dump.lineage
    ADD CONSTRAINT lineage_pkey PRIMARY KEY (child_session_id);
ALTER TABLE ONLY nsml_v1_dump.metric_block
    ADD CONSTRAINT metric_block_pkey PRIMARY KEY (session_id, name, block);
ALTER TABLE ONLY nsml_v1_dump.metric_point
    ADD CONSTRAINT metric_point_pkey PRIMARY KEY (id);
ALTER TABLE ONLY nsml_v1_dump.metric_source
    ADD CONSTRAINT metric_source_pkey PRIMARY KEY (session_id, name);
ALTER TABLE ONLY nsml_v1_dump.metric_summary
    ADD CONSTRAINT metric_summary_pkey PRIMARY KEY (session_id, name);
ALTER TABLE ONLY nsml_v1_dump.scrape_cursor
    ADD CONSTRAINT scrape_cursor_pkey PRIMARY KEY (session_id, file);
ALTER TABLE ONLY nsml_v1_dump.session
    ADD CONSTRAINT session_pkey PRIMARY KEY (id);
ALTER TABLE ONLY nsml_v1_dump.snapshot
    ADD CONSTRAINT snapshot_pkey PRIMARY KEY (id);
ALTER TABLE ONLY nsml_v1_dump.snapshot_scan
    ADD CONSTRAINT snapshot_scan_pkey PRIMARY KEY (session_id);
ALTER TABLE ONLY nsml_v1_dump.state_change
    ADD CONSTRAINT state_change_pkey PRIMARY KEY (id);
ALTER TABLE ONLY nsml_v1_dump.job
    ADD CONSTRAINT uq_job_cluster_job_id UNIQUE (cluster, job_id);
ALTER TABLE ONLY nsml_v1_dump.job_run
    ADD CONSTRAINT uq_job_run UNIQUE (session_id, job_id, restart_count);
ALTER TABLE ONLY nsml_v1_dump.session
    ADD CONSTRAINT uq_session_project_number UNIQUE (project, number);
ALTER TABLE ONLY nsml_v1_dump.snapshot
    ADD CONSTRAINT uq_snapshot_session_tag UNIQUE (session_id, tag);
CREATE INDEX ix_event_session_id ON nsml_v1_dump.event USING btree (session_id);
CREATE INDEX ix_job_run_session_id ON nsml_v1_dump.job_run USING btree (session_id);
CREATE INDEX ix_job_session_id ON nsml_v1_dump.job USING btree (session_id);
CREATE INDEX ix_lineage_parent_session_id ON nsml_v1_dump.lineage USING btree (parent_session_id);
CREATE INDEX ix_metric_point_session_name_step ON nsml_v1_dump.metric_point USING btree (session_id, name, step);
CREATE INDEX ix_session_cluster ON nsml_v1_dump.session USING btree (cluster);
CREATE UNIQUE INDEX ix_session_name ON nsml_v1_dump.session USING btree (name);
CREATE INDEX ix_session_project ON nsml_v1_dump.session USING btree (project);
CREATE INDEX ix_session_state ON nsml_v1_dump.session USING btree (state);
CREATE INDEX ix_snapshot_session_id ON nsml_v1_dump.snapshot USING btree (session_id);
CREATE INDEX ix_state_change_session_id ON nsml_v1_dump.state_change USING btree (session_id);
ALTER TABLE ONLY nsml_v1_dump.event
    ADD CONSTRAINT event_session_id_fkey FOREIGN KEY (session_id) REFERENCES nsml_v1_dump.session(id) ON DELETE CASCADE;
ALTER TABLE ONLY nsml_v1_dump.gpu_usage
    ADD CONSTRAINT gpu_usage_session_id_fkey FOREIGN KEY (session_id) REFERENCES nsml_v1_dump.session(id) ON DELETE CASCADE;
ALTER TABLE ONLY nsml_v1_dump.job_run
    ADD CONSTRAINT job_run_session_id_fkey FOREIGN KEY (session_id) REFERENCES nsml_v1_dump.session(id) ON DELETE CASCADE;
ALTER TABLE ONLY nsml_v1_dump.job
    ADD CONSTRAINT job_session_id_fkey FOREIGN KEY (session_id) REFERENCES nsml_v1_dump.session(id) ON DELETE CASCADE;
ALTER TABLE ONLY nsml_v1_dump.lineage
    ADD CONSTRAINT lineage_child_session_id_fkey FOREIGN KEY (child_session_id) REFERENCES nsml_v1_dump.session(id) ON DELETE CASCADE;
ALTER TABLE ONLY nsml_v1_dump.lineage
    ADD CONSTRAINT lineage_parent_session_id_fkey FOREIGN KEY (parent_session_id) REFERENCES nsml_v1_dump.session(id) ON DELETE SET NULL;
ALTER TABLE ONLY nsml_v1_dump.metric_block
    ADD CONSTRAINT metric_block_session_id_fkey FOREIGN KEY (session_id) REFERENCES nsml_v1_dump.session(id) ON DELETE CASCADE;
ALTER TABLE ONLY nsml_v1_dump.metric_point
    ADD CONSTRAINT metric_point_session_id_fkey FOREIGN KEY (session_id) REFERENCES nsml_v1_dump.session(id) ON DELETE CASCADE;
ALTER TABLE ONLY nsml_v1_dump.metric_source
    ADD CONSTRAINT metric_source_session_id_fkey FOREIGN KEY (session_id) REFERENCES nsml_v1_dump.session(id) ON DELETE CASCADE;
ALTER TABLE ONLY nsml_v1_dump.metric_summary
    ADD CONSTRAINT metric_summary_session_id_fkey FOREIGN KEY (session_id) REFERENCES nsml_v1_dump.session(id) ON DELETE CASCADE;
ALTER TABLE ONLY nsml_v1_dump.scrape_cursor
    ADD CONSTRAINT scrape_cursor_session_id_fkey FOREIGN KEY (session_id) REFERENCES nsml_v1_dump.session(id) ON DELETE CASCADE;
ALTER TABLE ONLY nsml_v1_dump.snapshot_scan
    ADD CONSTRAINT snapshot_scan_session_id_fkey FOREIGN KEY (session_id) REFERENCES nsml_v1_dump.session(id) ON DELETE CASCADE;
ALTER TABLE ONLY nsml_v1_dump.snapshot
    ADD CONSTRAINT snapshot_session_id_fkey FOREIGN KEY (session_id) REFERENCES nsml_v1_dump.session(id) ON DELETE CASCADE;
ALTER TABLE ONLY nsml_v1_dump.state_change
    ADD CONSTRAINT state_change_session_id_fkey FOREIGN KEY (session_id) REFERENCES nsml_v1_dump.session(id) ON DELETE CASCADE;
