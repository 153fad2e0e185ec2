-- 0006 belongs to the auth engineer (users, tokens, sessions). This
-- placeholder keeps the versions without gaps on the hooks branch; at
-- merge, take auth's 0006_auth.sql and drop this one.
SELECT 1;
