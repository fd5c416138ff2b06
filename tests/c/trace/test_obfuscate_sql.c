/* test_obfuscate_sql.c - the SQL obfuscator against the test vectors of the Go Agent's suite
 * (pkg/obfuscate sql_test.go, as carried by libdd-trace-obfuscation sql.rs CASES and
 * SUITE_CASES), per dialect, plus hostile input: every input ends at a guard page, invalid
 * UTF-8, unterminated constructs, huge inputs in linear time, and arena exhaustion. */
#include <time.h>

#include "test.h"
#include "trace/obfuscate_sql.h"

typedef struct sql_case { const char *in, *want; } sql_case;

#define NP DDS__SQL_NON_PARSABLE_TEXT

/* Generic dialect (no db.type). */
static const sql_case GENERIC[] = {
    /* sql.rs CASES */
    {"罿", "罿"},
    {"罿潯", "罿潯"},
    {"罿潯罿潯罿潯罿潯罿潯", "罿潯罿潯罿潯罿潯罿潯"},
    {"'abc1287681964'", "?"},
    {"1 - 2", "? - ?"},
    {"SELECT * FROM TABLE WHERE userId = 'abc1287681964'", "SELECT * FROM TABLE WHERE userId = ?"},
    {"SELECT * FROM TABLE WHERE userId = 'it''s a string'", "SELECT * FROM TABLE WHERE userId = ?"},
    {"SELECT * FROM TABLE WHERE userId IN ('a', 'b', 'c')", "SELECT * FROM TABLE WHERE userId IN ( ? )"},
    {"SELECT * FROM TABLE WHERE userId = 'abc1287681964' ORDER BY FOO DESC",
     "SELECT * FROM TABLE WHERE userId = ? ORDER BY FOO DESC"},
    {"SELECT * FROM foo LEFT JOIN bar ON 'backslash\\' = foo.b WHERE foo.name = 'String'",
     "SELECT * FROM foo LEFT JOIN bar ON ? = foo.b WHERE foo.name = ?"},
    {"SELECT * FROM foo LEFT JOIN bar ON 'backslash\\' = foo.b LEFT JOIN bar2 ON 'backslash2\\' = foo.b2 WHERE "
     "foo.name = 'String'",
     "SELECT * FROM foo LEFT JOIN bar ON ? = foo.b LEFT JOIN bar2 ON ? = foo.b2 WHERE foo.name = ?"},
    {"SELECT * FROM foo LEFT JOIN bar ON 'embedded \\'quote\\' in string' = foo.b WHERE foo.name = 'String'",
     "SELECT * FROM foo LEFT JOIN bar ON ? = foo.b WHERE foo.name = ?"},
    {"SELECT * FROM TABLE JOIN SOMETHING ON TABLE.foo = SOMETHING.bar",
     "SELECT * FROM TABLE JOIN SOMETHING ON TABLE.foo = SOMETHING.bar"},
    {"CREATE TABLE \"VALUE\"", "CREATE TABLE VALUE"},
    {"INSERT INTO \"VALUE\" (\"column\") VALUES ('ljahklshdlKASH')", "INSERT INTO VALUE ( column ) VALUES ( ? )"},
    {"INSERT INTO \"VALUE\" (\"col1\",\"col2\",\"col3\") VALUES ('blah',12983,X'ff')",
     "INSERT INTO VALUE ( col1, col2, col3 ) VALUES ( ? )"},
    {"INSERT INTO VALUE (col1,col2,col3) VALUES (12983,X'ff','blah')",
     "INSERT INTO VALUE ( col1, col2, col3 ) VALUES ( ? )"},
    {"INSERT INTO VALUE (col1,col2,col3) VALUES ('a', 'b' ,1)", "INSERT INTO VALUE ( col1, col2, col3 ) VALUES ( ? )"},
    {"INSERT INTO VALUE (col1,col2,col3) VALUES (X'ff','罿潯罿潯罿潯罿潯罿潯',12983)",
     "INSERT INTO VALUE ( col1, col2, col3 ) VALUES ( ? )"},
    {"SELECT 3 AS NUCLEUS_TYPE,A0.ID,A0.\"NAME\" FROM \"VALUE\" A0", "SELECT ?, A0.ID, A0. NAME FROM VALUE A0"},
    {"SELECT COUNT(*) FROM TABLE_1 JOIN table_2 ON TABLE_1.foo = table_2.bar where col1 > .9999",
     "SELECT COUNT ( * ) FROM TABLE_1 JOIN table_2 ON TABLE_1.foo = table_2.bar where col1 > ?"},
    {"SELECT COUNT(*) FROM TABLE_1 JOIN table_2 ON TABLE_1.foo = table_2.bar where col1 > -0.9999",
     "SELECT COUNT ( * ) FROM TABLE_1 JOIN table_2 ON TABLE_1.foo = table_2.bar where col1 > ?"},
    {"SELECT COUNT(*) FROM TABLE_1 JOIN table_2 ON TABLE_1.foo = table_2.bar where col1 > -1e6",
     "SELECT COUNT ( * ) FROM TABLE_1 JOIN table_2 ON TABLE_1.foo = table_2.bar where col1 > ?"},
    {"SELECT COUNT(*) FROM TABLE_1 JOIN table_2 ON TABLE_1.foo = table_2.bar where col1 > +1e6",
     "SELECT COUNT ( * ) FROM TABLE_1 JOIN table_2 ON TABLE_1.foo = table_2.bar where col1 > + ?"},
    {"SELECT COUNT(*) FROM TABLE_1 JOIN table_2 ON TABLE_1.foo = table_2.bar where col1 > +6.34F",
     "SELECT COUNT ( * ) FROM TABLE_1 JOIN table_2 ON TABLE_1.foo = table_2.bar where col1 > + ? F"},
    {"SELECT COUNT(*) FROM TABLE_1 JOIN table_2 ON TABLE_1.foo = table_2.bar where col1 > -1d",
     "SELECT COUNT ( * ) FROM TABLE_1 JOIN table_2 ON TABLE_1.foo = table_2.bar where col1 > ? d"},
    {"SELECT COUNT(*) FROM TABLE_1 JOIN table_2 ON TABLE_1.foo = table_2.bar where col1 > x'ff'",
     "SELECT COUNT ( * ) FROM TABLE_1 JOIN table_2 ON TABLE_1.foo = table_2.bar where col1 > ?"},
    {"SELECT COUNT(*) FROM TABLE_1 JOIN table_2 ON TABLE_1.foo = table_2.bar where col1 > 0xff",
     "SELECT COUNT ( * ) FROM TABLE_1 JOIN table_2 ON TABLE_1.foo = table_2.bar where col1 > ?"},
    {"SELECT COUNT(*) FROM TABLE_1 JOIN table_2 ON TABLE_1.foo = table_2.bar where col1 <> ''",
     "SELECT COUNT ( * ) FROM TABLE_1 JOIN table_2 ON TABLE_1.foo = table_2.bar where col1 <> ?"},
    {"SELECT COUNT(*) FROM TABLE_1 JOIN table_2 ON TABLE_1.foo = table_2.bar where col1 <> ' x x'",
     "SELECT COUNT ( * ) FROM TABLE_1 JOIN table_2 ON TABLE_1.foo = table_2.bar where col1 <> ?"},
    {"SELECT COUNT(*) FROM TABLE_1 JOIN table_2 ON TABLE_1.foo = table_2.bar where col1 <> '5,123'",
     "SELECT COUNT ( * ) FROM TABLE_1 JOIN table_2 ON TABLE_1.foo = table_2.bar where col1 <> ?"},
    {"CREATE TABLE S_H2 (id INTEGER not NULL, PRIMARY KEY ( id ))",
     "CREATE TABLE S_H2 ( id INTEGER not ? PRIMARY KEY ( id ) )"},
    {"SELECT * FROM TABLE WHERE name = 'O''Brady'", "SELECT * FROM TABLE WHERE name = ?"},
    {"INSERT INTO visits VALUES (2, 8, '2013-01-02', 'rabies shot')", "INSERT INTO visits VALUES ( ? )"},
    {"SELECT * FROM TABLE WHERE userId = ',' and foo=foo.bar", "SELECT * FROM TABLE WHERE userId = ? and foo = foo.bar"},
    {"SELECT * FROM TABLE WHERE userId =     ','||foo.bar", "SELECT * FROM TABLE WHERE userId = ? | | foo.bar"},
    {"SELECT * FROM t WHERE y IN (:protocols) AND x IN (:sites)",
     "SELECT * FROM t WHERE y IN ( :protocols ) AND x IN ( :sites )"},
    {"INSERT INTO user (id, username) VALUES ('Fred','Smith'), ('John','Smith'), ('Michael','Smith'), "
     "('Robert','Smith');",
     "INSERT INTO user ( id, username ) VALUES ( ? )"},
    {"INSERT INTO `qual-aa`.issues (alert0, alert1) VALUES (NULL, NULL)",
     "INSERT INTO qual-aa . issues ( alert0, alert1 ) VALUES ( ? )"},
    {"select !+2", "select ! + ?"},
    {"SELECT 5*s1 FROM t4", "SELECT ? * s1 FROM t4"},
    {"WHERE ROW(5*t2.s1,77)=(SELECT 5*s1 FROM t4 UNION SELECT 77 FROM (SELECT * FROM t5))",
     "WHERE ROW ( ? * t2.s1, ? ) = ( SELECT ? * s1 FROM t4 UNION SELECT ? FROM ( SELECT * FROM t5 ) )"},
    {"UPDATE user_dash_pref SET json_prefs = %(json_prefs)s, modified = '2015-08-27' WHERE user_id = %(user_id)s "
     "AND url = %(url)s",
     "UPDATE user_dash_pref SET json_prefs = ? modified = ? WHERE user_id = ? AND url = ?"},
    {"UPDATE t SET a = 1, b = 2, c = 3", "UPDATE t SET a = ? b = ? c = ?"},
    {"SELECT set_config('foo', bar, FALSE)", "SELECT set_config ( ? bar, ? )"},
    {"%C", "?"},
    {"0!(2", "? ! ( ?"},
    {"0D", "? D"},
    {".*", ". *"},
    {"table.*", "table.*"},
    {"2%$2", "? % ?"},
    {"SELECT * FROM dbo.Items WHERE id = 1 or /*!obfuscation*/ 1 = 1",
     "SELECT * FROM dbo.Items WHERE id = ? or ? = ?"},
    {"SELECT TO_DATE(TO_CHAR(TO_DATE(bar.h,?),?),?) FROM t", "SELECT TO_DATE ( TO_CHAR ( TO_DATE ( bar.h, ? ) ) ) FROM t"},
    {"SELECT a ||?|| b FROM t", "SELECT a | | ? | | b FROM t"},
    {"WITH sales AS (SELECT x FROM t WHERE id = 1) SELECT * FROM sales",
     "WITH sales SELECT x FROM t WHERE id = ? ) SELECT * FROM sales"},
    {"update Orders set created = \"2019-05-24 00:26:17\", gross = 30.28", "update Orders set created = ? gross = ?"},
    {"SELECT * FROM \"users\" WHERE id = 1", "SELECT * FROM users WHERE id = ?"},
    /* SUITE_CASES (the Agent's suite) */
    {"SELECT username AS person FROM users WHERE id=4", "SELECT username FROM users WHERE id = ?"},
    {"autovacuum: VACUUM ANALYZE fake.table", "autovacuum : VACUUM ANALYZE fake.table"},
    {"autovacuum: VACUUM fake.big_table (to prevent wraparound)",
     "autovacuum : VACUUM fake.big_table ( to prevent wraparound )"},
    {"SELECT $func$INSERT INTO table VALUES ('a', 1, 2)$func$ FROM users", "SELECT ? FROM users"},
    {"\n/* Multi-line comment */\nSELECT * FROM clients WHERE (clients.first_name = 'Andy') LIMIT 1 BEGIN INSERT INTO "
     "owners (created_at, first_name, locked, orders_count, updated_at) VALUES ('2011-08-30 05:22:57', 'Andy', 1, "
     "NULL, '2011-08-30 05:22:57') COMMIT",
     "SELECT * FROM clients WHERE ( clients.first_name = ? ) LIMIT ? BEGIN INSERT INTO owners ( created_at, "
     "first_name, locked, orders_count, updated_at ) VALUES ( ? ) COMMIT"},
    {"\n-- Single line comment\n-- Another single line comment\n-- Another another single line comment\nGRANT USAGE, "
     "DELETE ON SCHEMA datadog TO datadog",
     "GRANT USAGE, DELETE ON SCHEMA datadog TO datadog"},
    {"\n/*\nMulti-line comment\nwith line breaks\n*/\n/* Two multi-line comments with\nline breaks */\nSELECT "
     "clients.* FROM clients INNER JOIN posts ON posts.author_id = author.id AND posts.published = 't'",
     "SELECT clients.* FROM clients INNER JOIN posts ON posts.author_id = author.id AND posts.published = ?"},
    {"CREATE TRIGGER dogwatcher SELECT ON w1 BEFORE (UPDATE d1 SET (c1, c2, c3) = (c1 + 1, c2 + 1, c3 + 1))",
     "CREATE TRIGGER dogwatcher SELECT ON w1 BEFORE ( UPDATE d1 SET ( c1, c2, c3 ) = ( c1 + ? c2 + ? c3 + ? ) )"},
    {"\n-- Testing table value constructor SQL expression\nSELECT * FROM (VALUES (1, 'dog')) AS d (id, animal)",
     "SELECT * FROM ( VALUES ( ? ) ) ( id, animal )"},
    {"ALTER TABLE table DROP COLUMN column", "ALTER TABLE table DROP COLUMN column"},
    {"REVOKE ALL ON SCHEMA datadog FROM datadog", "REVOKE ALL ON SCHEMA datadog FROM datadog"},
    {"TRUNCATE TABLE datadog", "TRUNCATE TABLE datadog"},
    {"\n-- Testing explicit table SQL expression\nWITH T1 AS (SELECT PNO , PNAME , COLOR , WEIGHT , CITY FROM P WHERE  "
     "CITY = 'London'),\nT2 AS (SELECT PNO, PNAME, COLOR, WEIGHT, CITY, 2 * WEIGHT AS NEW_WEIGHT, 'Oslo' AS NEW_CITY "
     "FROM T1),\nT3 AS ( SELECT PNO , PNAME, COLOR, NEW_WEIGHT AS WEIGHT, NEW_CITY AS CITY FROM T2),\nT4 AS ( TABLE P "
     "EXCEPT CORRESPONDING TABLE T1)\nTABLE T4 UNION CORRESPONDING TABLE T3",
     "WITH T1 SELECT PNO, PNAME, COLOR, WEIGHT, CITY FROM P WHERE CITY = ? ) T2 SELECT PNO, PNAME, COLOR, WEIGHT, "
     "CITY, ? * WEIGHT, ? FROM T1 ), T3 SELECT PNO, PNAME, COLOR, NEW_WEIGHT, NEW_CITY FROM T2 ), T4 TABLE P EXCEPT "
     "CORRESPONDING TABLE T1 ) TABLE T4 UNION CORRESPONDING TABLE T3"},
    {"SELECT Codi , Nom_CA AS Nom, Descripció_CAT AS Descripció FROM ProtValAptitud WHERE Vigent=1 ORDER BY Ordre, Codi",
     "SELECT Codi, Nom_CA, Descripció_CAT FROM ProtValAptitud WHERE Vigent = ? ORDER BY Ordre, Codi"},
    {"SELECT name, pretty_print(address) FROM people;", "SELECT name, pretty_print ( address ) FROM people"},
    {"* SELECT * FROM fake_data(1, 2, 3);", "* SELECT * FROM fake_data ( ? )"},
    {"CREATE FUNCTION add(integer, integer) RETURNS integer\n AS 'select $1 + $2;'\n LANGUAGE SQL\n IMMUTABLE\n "
     "RETURNS NULL ON NULL INPUT;",
     "CREATE FUNCTION add ( integer, integer ) RETURNS integer LANGUAGE SQL IMMUTABLE RETURNS ? ON ? INPUT"},
    {"SELECT * FROM public.table ( array [ ROW ( array [ 'magic', 'foo',",
     "SELECT * FROM public.table ( array [ ROW ( array [ ?"},
    {"SELECT pg_try_advisory_lock (123) AS t46eef3f025cc27feb31ca5a2d668a09a", "SELECT pg_try_advisory_lock ( ? )"},
    {"INSERT INTO `qual-aa`.issues (alert0 , alert1) VALUES (NULL, NULL)",
     "INSERT INTO qual-aa . issues ( alert0, alert1 ) VALUES ( ? )"},
    {"INSERT INTO user (id, email, name) VALUES (null, ?, ?)", "INSERT INTO user ( id, email, name ) VALUES ( ? )"},
    {"select * from users where id = 214325346     # This comment continues to the end of line",
     "select * from users where id = ?"},
    {"select * from users where id = 214325346     -- This comment continues to the end of line",
     "select * from users where id = ?"},
    {"SELECT * FROM /* this is an in-line comment */ users;", "SELECT * FROM users"},
    {"SELECT /*! STRAIGHT_JOIN */ col1 FROM table1", "SELECT col1 FROM table1"},
    {"DELETE FROM t1\n\t\t\tWHERE s11 > ANY\n\t\t\t(SELECT COUNT(*) /* no hint */ FROM t2\n\t\t\tWHERE NOT "
     "EXISTS\n\t\t\t(SELECT * FROM t3\n\t\t\tWHERE ROW(5*t2.s1,77)=\n\t\t\t(SELECT 50,11*s1 FROM t4 UNION SELECT 50,77 "
     "FROM\n\t\t\t(SELECT * FROM t5) AS t5)));",
     "DELETE FROM t1 WHERE s11 > ANY ( SELECT COUNT ( * ) FROM t2 WHERE NOT EXISTS ( SELECT * FROM t3 WHERE ROW ( ? "
     "* t2.s1, ? ) = ( SELECT ? * s1 FROM t4 UNION SELECT ? FROM ( SELECT * FROM t5 ) ) ) )"},
    {"SET @g = 'POLYGON((0 0,10 0,10 10,0 10,0 0),(5 5,7 5,7 7,5 7, 5 5))';", "SET @g = ?"},
    {"SELECT daily_values.*,\n                    LEAST((5040000 - @runtot), value) AS value,\n                    "
     "(@runtot := @runtot + daily_values.value) AS total FROM (SELECT @runtot:=0) AS n, `daily_values`  WHERE "
     "`daily_values`.`subject_id` = 12345 AND `daily_values`.`subject_type` = 'Skippity' AND (daily_values.date "
     "BETWEEN '2018-05-09' AND '2018-06-19') HAVING value >= 0 ORDER BY date",
     "SELECT daily_values.*, LEAST ( ( ? - @runtot ), value ), ( @runtot := @runtot + daily_values.value ) FROM ( "
     "SELECT @runtot := ? ), daily_values WHERE daily_values . subject_id = ? AND daily_values . subject_type = ? AND "
     "( daily_values.date BETWEEN ? AND ? ) HAVING value >= ? ORDER BY date"},
    {"SELECT [b].[BlogId], [b].[Name]\nFROM [Blogs] AS [b]\nORDER BY [b].[Name]",
     "SELECT [ b ] . [ BlogId ], [ b ] . [ Name ] FROM [ Blogs ] ORDER BY [ b ] . [ Name ]"},
    {"SELECT * FROM users WHERE firstname=''", "SELECT * FROM users WHERE firstname = ?"},
    {"SELECT * FROM users WHERE firstname=' '", "SELECT * FROM users WHERE firstname = ?"},
    {"SELECT * FROM users WHERE firstname=\"\"", "SELECT * FROM users WHERE firstname = ?"},
    {"SELECT * FROM users WHERE lastname=\" \"", "SELECT * FROM users WHERE lastname = ?"},
    {"SELECT * FROM users WHERE lastname=\"\t \"", "SELECT * FROM users WHERE lastname = ?"},
    {"update Attendees set email = '626837270@qq.com', first_name = \"贺新春送猪福加企鹅１０５４９４８０００领９８綵斟\", "
     "last_name = '王子１９８４４２ｃｏｍ体验猪多优惠', journal_activity_id = 4246684839261125564, changed = "
     "\"2019-05-24 00:26:22\" where id = 123",
     "update Attendees set email = ? first_name = ? last_name = ? journal_activity_id = ? changed = ? where id = ?"},
    {"SELECT * FROM foo LEFT JOIN bar ON 'embedded ''quote'' in string' = foo.b WHERE foo.name = 'String'",
     "SELECT * FROM foo LEFT JOIN bar ON ? = foo.b WHERE foo.name = ?"},
    {"SELECT org_id,metric_key,metric_type,interval FROM metrics_metadata WHERE org_id = ? AND metric_key = "
     "ANY(ARRAY[?,?,?,?,?])",
     "SELECT org_id, metric_key, metric_type, interval FROM metrics_metadata WHERE org_id = ? AND metric_key = ANY ( "
     "ARRAY [ ? ] )"},
    {"SELECT wp_woocommerce_order_items.order_id As No_Commande\n\t\t\tFROM  wp_woocommerce_order_items\n\t\t\tLEFT "
     "JOIN\n\t\t\t\t(\n\t\t\t\t\tSELECT meta_value As Prenom\n\t\t\t\t\tFROM wp_postmeta\n\t\t\t\t\tWHERE meta_key = "
     "'_shipping_first_name'\n\t\t\t\t) AS a\n\t\t\tON wp_woocommerce_order_items.order_id = a.post_id\n\t\t\tWHERE  "
     "wp_woocommerce_order_items.order_id =2198",
     "SELECT wp_woocommerce_order_items.order_id FROM wp_woocommerce_order_items LEFT JOIN ( SELECT meta_value FROM "
     "wp_postmeta WHERE meta_key = ? ) ON wp_woocommerce_order_items.order_id = a.post_id WHERE "
     "wp_woocommerce_order_items.order_id = ?"},
    {"SELECT a :: VARCHAR(255) FROM foo WHERE foo.name = 'String'", "SELECT a :: VARCHAR ( ? ) FROM foo WHERE foo.name = ?"},
    {"{call px_cu_se_security_pg.sps_get_my_accounts_count(?, ?, ?, ?)}",
     "{ call px_cu_se_security_pg.sps_get_my_accounts_count ( ? ) }"},
    {"{call px_cu_se_security_pg.sps_get_my_accounts_count(1, 2, 'one', 'two')};",
     "{ call px_cu_se_security_pg.sps_get_my_accounts_count ( ? ) }"},
    {"{call curly_fun('{{', '}}', '}', '}')};", "{ call curly_fun ( ? ) }"},
    {"SELECT id, name FROM emp WHERE name LIKE {fn UCASE('Smith')}", "SELECT id, name FROM emp WHERE name LIKE ?"},
    {"select users.custom #- '{a,b}' from users", "select users.custom"},
    {"select users.custom #> '{a,b}' from users", "select users.custom"},
    {"SELECT a FROM foo WHERE value<@name", "SELECT a FROM foo WHERE value < @name"},
    {"SELECT @@foo", "SELECT @@foo"},
    {"\nSELECT set_config('foo.bar', (SELECT foo.bar FROM sometable WHERE sometable.uuid = %(some_id)s)::text, "
     "FALSE);\nSELECT\n    othertable.id,\n    othertable.title\nFROM othertable\nINNER JOIN sometable ON sometable.id "
     "= othertable.site_id\nWHERE\n    sometable.uuid = %(some_id)s\nLIMIT 1\n;",
     "SELECT set_config ( ? ( SELECT foo.bar FROM sometable WHERE sometable.uuid = ? ) :: text, ? ) SELECT "
     "othertable.id, othertable.title FROM othertable INNER JOIN sometable ON sometable.id = othertable.site_id WHERE "
     "sometable.uuid = ? LIMIT ?"},
    {"INSERT INTO table (field1, field2) VALUES (1, $$someone's string123$with other things$$)",
     "INSERT INTO table ( field1, field2 ) VALUES ( ? )"},
    {"INSERT INTO table (field1) VALUES ($some tag$this text confuses$some other text$some ta not quite$some tag$)",
     "INSERT INTO table ( field1 ) VALUES ( ? )"},
    {"INSERT INTO table (field1) VALUES ($tag$random \\wqejks \"sadads' text$tag$)",
     "INSERT INTO table ( field1 ) VALUES ( ? )"},
    {"SELECT nspname FROM pg_class where nspname !~ '.*toIgnore.*'", "SELECT nspname FROM pg_class where nspname !~ ?"},
    {"SELECT nspname FROM pg_class where nspname !~* '.*toIgnoreInsensitive.*'",
     "SELECT nspname FROM pg_class where nspname !~* ?"},
    {"SELECT nspname FROM pg_class where nspname ~ '.*matching.*'", "SELECT nspname FROM pg_class where nspname ~ ?"},
    {"SELECT nspname FROM pg_class where nspname ~* '.*matchingInsensitive.*'",
     "SELECT nspname FROM pg_class where nspname ~* ?"},
    {"SELECT * FROM Items WHERE id = -1 OR id = -01 OR id = -108 OR id = -.018 OR id = -.08 OR id = -908129",
     "SELECT * FROM Items WHERE id = ? OR id = ? OR id = ? OR id = ? OR id = ? OR id = ?"},
    {"USING $09 SELECT", "USING ? SELECT"},
    {"USING - SELECT", "USING - SELECT"},
    {"select key, status, modified from org_check_run where org_id = %s and check in (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
     "select key, status, modified from org_check_run where org_id = ? and check in ( ? )"},
    {"select key, status, modified from org_check_run where org_id = %s and check in (%s , %s , %s )",
     "select key, status, modified from org_check_run where org_id = ? and check in ( ? )"},
    {"SELECT timestamp, processes FROM process_snapshot.minutely WHERE org_id = ? AND host = ? AND timestamp >= ? AND "
     "timestamp <= ?",
     "SELECT timestamp, processes FROM process_snapshot.minutely WHERE org_id = ? AND host = ? AND timestamp >= ? AND "
     "timestamp <= ?"},
    {"1234", "?"},
    {"-1234", "?"},
    {"1234e12", "?"},
    {"0xfa", "?"},
    {"01234567", "?"},
    {"09", "?"},
    {"-01234567", "?"},
    {"-012345678", "?"},
    {"select * from dollarField$ as df from some$dollar$filled_thing$$;",
     "select * from dollarField$ from some$dollar$filled_thing$$"},
    {"select * from `構わない`;", "select * from 構わない"},
    {"select * from names where name like '\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd';", "select * from names where name like ?"},
    {"SELECT ('\xef\xbf\xbd');", "SELECT ( ? )"},
    {"REPLACE INTO sales_2019_07_01 (`itemID`, `date`, `qty`, `price`) VALUES ((SELECT itemID FROM item1001 WHERE "
     "`sku` = [sku]), CURDATE(), [qty], 0.00)",
     "REPLACE INTO sales_2019_07_01 ( itemID, date, qty, price ) VALUES ( ( SELECT itemID FROM item1001 WHERE sku = "
     "[ sku ] ), CURDATE ( ), [ qty ], ? )"},
    {"SELECT ddh19.name, ddt.tags FROM dd91219.host ddh19, dd21916.host_tags ddt WHERE ddh19.id = ddt.host_id AND "
     "ddh19.org_id = 2 AND ddh19.name = 'datadog'",
     "SELECT ddh19.name, ddt.tags FROM dd91219.host ddh19, dd21916.host_tags ddt WHERE ddh19.id = ddt.host_id AND "
     "ddh19.org_id = ? AND ddh19.name = ?"},
    {"SELECT ddu2.name, ddo.id10, ddk.app_key52 FROM dd3120.user ddu2, dd1931.orgs55 ddo, dd53819.keys ddk",
     "SELECT ddu2.name, ddo.id10, ddk.app_key52 FROM dd3120.user ddu2, dd1931.orgs55 ddo, dd53819.keys ddk"},
    {"WITH sales AS\n(SELECT sf2.*\n\tFROM gosalesdw28391.sls_order_method_dim AS md,\n\t\tgosalesdw1920."
     "sls_product_dim391 AS pd190,\n\t\tgosalesdw3819.emp_employee_dim AS ed,\n\t\tgosalesdw3919.sls_sales_fact3819 "
     "AS sf2\n\tWHERE pd190.product_key = sf2.product_key\n\tAND pd190.product_number381 > 10000\n\tAND "
     "pd190.base_product_key > 30\n\tAND md.order_method_key = sf2.order_method_key8319\n\tAND md.order_method_code "
     "> 5\n\tAND ed.employee_key = sf2.employee_key\n\tAND ed.manager_code1 > 20),\ninventory3118 AS\n(SELECT "
     "if.*\n\tFROM gosalesdw1592.go_branch_dim AS bd3221,\n\tgosalesdw.dist_inventory_fact AS if\n\tWHERE "
     "if.branch_key = bd3221.branch_key\n\tAND bd3221.branch_code > 20)\nSELECT sales1828.product_key AS "
     "PROD_KEY,\nSUM(CAST (inventory3118.quantity_shipped AS BIGINT)) AS INV_SHIPPED3118,\nSUM(CAST "
     "(sales1828.quantity AS BIGINT)) AS PROD_QUANTITY,\nRANK() OVER ( ORDER BY SUM(CAST (sales1828.quantity AS "
     "BIGINT)) DESC) AS PROD_RANK\nFROM sales1828, inventory3118\nWHERE sales1828.product_key = "
     "inventory3118.product_key\nGROUP BY sales1828.product_key",
     "WITH sales SELECT sf2.* FROM gosalesdw28391.sls_order_method_dim, gosalesdw1920.sls_product_dim391, "
     "gosalesdw3819.emp_employee_dim, gosalesdw3919.sls_sales_fact3819 WHERE pd190.product_key = sf2.product_key AND "
     "pd190.product_number381 > ? AND pd190.base_product_key > ? AND md.order_method_key = sf2.order_method_key8319 "
     "AND md.order_method_code > ? AND ed.employee_key = sf2.employee_key AND ed.manager_code1 > ? ) inventory3118 "
     "SELECT if.* FROM gosalesdw1592.go_branch_dim, gosalesdw.dist_inventory_fact WHERE if.branch_key = "
     "bd3221.branch_key AND bd3221.branch_code > ? ) SELECT sales1828.product_key, SUM ( CAST ( "
     "inventory3118.quantity_shipped ) ), SUM ( CAST ( sales1828.quantity ) ), RANK ( ) OVER ( ORDER BY SUM ( CAST "
     "( sales1828.quantity ) ) DESC ) FROM sales1828, inventory3118 WHERE sales1828.product_key = "
     "inventory3118.product_key GROUP BY sales1828.product_key"},
    {"SELECT \"table\".\"field\" FROM \"table\" WHERE \"table\".\"otherfield\" = $? AND \"table\".\"thirdfield\" = $?;",
     "SELECT table . field FROM table WHERE table . otherfield = ? AND table . thirdfield = ?"},
    {"select * from users where float = .43422", "select * from users where float = ?"},
    {"SELECT host, status FROM ec2_status WHERE org_id=42", "SELECT host, status FROM ec2_status WHERE org_id = ?"},
    {"-- get user \n--\n select * \n   from users \n    where\n       id = 214325346", "select * from users where id = ?"},
    {"SELECT * FROM `host` WHERE `id` IN (42, 43) /*comment with parameters,host:localhost,url:controller#home,"
     "id:FF005:00CAA*/",
     "SELECT * FROM host WHERE id IN ( ? )"},
    {"SELECT `host`.`address` FROM `host` WHERE org_id=42", "SELECT host . address FROM host WHERE org_id = ?"},
    {"SELECT \"host\".\"address\" FROM \"host\" WHERE org_id=42", "SELECT host . address FROM host WHERE org_id = ?"},
    {"SELECT DISTINCT host.id AS host_id FROM host JOIN host_alias ON host_alias.host_id = host.id WHERE host.org_id "
     "= %(org_id_1)s AND host.name NOT IN (%(name_1)s) AND host.name IN (%(name_2)s, %(name_3)s, %(name_4)s, "
     "%(name_5)s)",
     "SELECT DISTINCT host.id FROM host JOIN host_alias ON host_alias.host_id = host.id WHERE host.org_id = ? AND "
     "host.name NOT IN ( ? ) AND host.name IN ( ? )"},
    {"SELECT org_id, metric_key   FROM metrics_metadata   WHERE org_id = %(org_id)s AND metric_key = ANY(array[21, 25, "
     "32])",
     "SELECT org_id, metric_key FROM metrics_metadata WHERE org_id = ? AND metric_key = ANY ( array [ ? ] )"},
    {"SELECT articles.* FROM articles WHERE articles.id = 1 limit 1", "SELECT articles.* FROM articles WHERE articles.id = ? limit ?"},
    {"SELECT articles.* FROM articles WHERE articles.id = 1 LIMIT 15,20;",
     "SELECT articles.* FROM articles WHERE articles.id = ? LIMIT ?"},
    {"SELECT articles.* FROM articles WHERE (articles.created_at BETWEEN $1 AND $2)",
     "SELECT articles.* FROM articles WHERE ( articles.created_at BETWEEN ? AND ? )"},
    {"SELECT articles.* FROM articles WHERE (articles.published != true)",
     "SELECT articles.* FROM articles WHERE ( articles.published != ? )"},
    {"SELECT articles.* FROM articles WHERE ( title = ? ) AND ( author = ? )",
     "SELECT articles.* FROM articles WHERE ( title = ? ) AND ( author = ? )"},
    {"SELECT articles.* FROM articles WHERE ( title = @title )", "SELECT articles.* FROM articles WHERE ( title = @title )"},
    {"SELECT date(created_at) as ordered_date, sum(price) as total_price FROM orders GROUP BY date(created_at) HAVING "
     "sum(price) > 100",
     "SELECT date ( created_at ), sum ( price ) FROM orders GROUP BY date ( created_at ) HAVING sum ( price ) > ?"},
    {"SELECT * FROM clients WHERE (clients.first_name = 'Andy') LIMIT 15, 25 BEGIN INSERT INTO clients (created_at, "
     "first_name, locked, orders_count, updated_at) VALUES ('2011-08-30 05:22:57', 'Andy', 1, NULL, '2011-08-30 "
     "05:22:57') COMMIT",
     "SELECT * FROM clients WHERE ( clients.first_name = ? ) LIMIT ? BEGIN INSERT INTO clients ( created_at, "
     "first_name, locked, orders_count, updated_at ) VALUES ( ? ) COMMIT"},
    {"SAVEPOINT \"s139956586256192_x1\"", "SAVEPOINT ?"},
    {"CREATE KEYSPACE Excelsior WITH replication = {'class': 'SimpleStrategy', 'replication_factor' : 3};",
     "CREATE KEYSPACE Excelsior WITH replication = ?"},
    {"SELECT \"webcore_page\".\"id\" FROM \"webcore_page\" WHERE \"webcore_page\".\"slug\" = %s ORDER BY "
     "\"webcore_page\".\"path\" ASC LIMIT 1",
     "SELECT webcore_page . id FROM webcore_page WHERE webcore_page . slug = ? ORDER BY webcore_page . path ASC LIMIT ?"},
    {"SELECT server_table.host AS host_id FROM table#.host_tags as server_table WHERE server_table.host_id = 50",
     "SELECT server_table.host FROM table#.host_tags WHERE server_table.host_id = ?"},
    {"SELECT name FROM people WHERE person_id = -1", "SELECT name FROM people WHERE person_id = ?"},
    {"select * from test where !is_good;", "select * from test where ! is_good"},
    {"select * from test where !45;", "select * from test where ! ?"},
    {"select * from test where !(select is_good from good_things);",
     "select * from test where ! ( select is_good from good_things )"},
    {"select * from test where !'weird_query'", "select * from test where ! ?"},
    {"select * from test where !\"weird_query\"", "select * from test where ! weird_query"},
    {"select * from test where !`weird_query`", "select * from test where ! weird_query"},
    {"select !- 2", "select ! - ?"},
    {"select count(*) as `count(*)` from test", "select count ( * ) from test"},
    {"SELECT age as `age}` FROM profile", "SELECT age FROM profile"},
    {"SELECT age as `age``}` FROM profile", "SELECT age FROM profile"},
    {"SELECT * from users where user_id =:0_USER", "SELECT * from users where user_id = :0_USER"},
    {"SELECT * FROM (SELECT * FROM nested_table)", "SELECT * FROM ( SELECT * FROM nested_table )"},
    {"DELETE FROM table WHERE table.a=1", "DELETE FROM table WHERE table.a = ?"},
    /* LIMIT ?, ? collapses; a trailing ';' goes */
    {"SELECT * FROM t LIMIT 10, 20;", "SELECT * FROM t LIMIT ?"},
    /* What the Go Agent answers "Non-parsable SQL query" for (the Rust port answers "" or
     * keeps going): nothing left, unterminated literals and comments, stray bytes. */
    {"   ", NP},
    {"-- comment", NP},
    {"SELECT 'unterminated", NP},
    {"SELECT /* unterminated", NP},
    {"SELECT a } b", NP},
    {"SELECT \x01", NP},
    {"SELECT a FROM b WHERE x = 'caf\xc3' AND 1", NP},
};

static const sql_case POSTGRES[] = {
    {"select * from users where user.custom ? 'foo'", "select * from users where user.custom ? ?"},
    {"select users.custom #- '{a,b}' from users", "select users.custom #- ? from users"},
    {"select users.custom #> '{a,b}' from users", "select users.custom #> ? from users"},
    {"select users.custom #>> '{a,b}' from users", "select users.custom #>> ? from users"},
    {"select data->'name'->>'first' from t", "select data -> ? ->> ? from t"},
    {"select * from t where tags @> '{\"a\":1}' and tags <@ '{}'", "select * from t where tags @> ? and tags <@ ?"},
    {"select * from t where tags ?| array['a'] and tags ?& array['b']",
     "select * from t where tags ?| array [ ? ] and tags ?& array [ ? ]"},
    {"SELECT * FROM users WHERE id = $1 AND name = $2", "SELECT * FROM users WHERE id = ? AND name = ?"},
};

static const sql_case MSSQL[] = {
    {"SELECT * FROM #temp WHERE id = 1", "SELECT * FROM #temp WHERE id = ?"},
    {"SELECT TOP 10 [Name] AS [Full Name] FROM [dbo].[Users]", "SELECT TOP ? Name FROM dbo . Users"},
    {"SELECT [a]]b] FROM [] WHERE x = N'y'", "SELECT a]b FROM [] WHERE x = N ?"},
    /* the suite's {'dbms': 'mssql'} cases */
    {"\n\tMERGE INTO Employees AS target\n\tUSING EmployeeUpdates AS source\n\tON (target.EmployeeID = "
     "source.EmployeeID)\n\tWHEN MATCHED THEN\n\t\tUPDATE SET\n\t\t\ttarget.Name = source.Name\n\tWHEN NOT "
     "MATCHED BY TARGET THEN\n\t\tINSERT (EmployeeID, Name)\n\t\tVALUES (source.EmployeeID, source.Name)\n\tWHEN "
     "NOT MATCHED BY SOURCE THEN\n\t\tDELETE\n\tOUTPUT $action, inserted.*, deleted.*;\n\t",
     "MERGE INTO Employees USING EmployeeUpdates ON ( target.EmployeeID = source.EmployeeID ) WHEN MATCHED THEN "
     "UPDATE SET target.Name = source.Name WHEN NOT MATCHED BY TARGET THEN INSERT ( EmployeeID, Name ) VALUES ( "
     "source.EmployeeID, source.Name ) WHEN NOT MATCHED BY SOURCE THEN DELETE OUTPUT $action, inserted.*, deleted.*"},
    {"select * from ##ThisIsAGlobalTempTable where id = 1", "select * from ##ThisIsAGlobalTempTable where id = ?"},
    {"select * from dbo.#ThisIsATempTable where id = 1", "select * from dbo.#ThisIsATempTable where id = ?"},
    {"SELECT * from [db_users] where [id] = @1", "SELECT * from db_users where id = @1"},
};

static void run_table(const char *name, const sql_case *cases, size_t n, dds__sql_dbms dbms) {
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(cases[i].in);
        char *in = test_guarded_copy(cases[i].in, len);
        dds__slice out = {0};
        dds__sql_result r = dds__obfuscate_sql(dds__slice_make(in, len), dbms, &a, &out);
        CHECK_MSG(r != DDS__SQL_OOM, "%s[%zu]: out of memory", name, i);
        bool np = strcmp(cases[i].want, NP) == 0;
        CHECK_MSG((r == DDS__SQL_NON_PARSABLE) == np, "%s[%zu] %s: result %d", name, i, cases[i].in, (int)r);
        CHECK_MSG(out.len == strlen(cases[i].want) && memcmp(out.ptr, cases[i].want, out.len) == 0,
                  "%s[%zu]\n    in:   %s\n    want: %s\n    got:  %.*s", name, i, cases[i].in, cases[i].want,
                  (int)out.len, out.ptr ? out.ptr : "");
        test_guarded_free(in, len);
        dds__arena_reset(&a);
    }
    dds__arena_free(&a);
}

TEST(generic_vectors) { run_table("generic", GENERIC, sizeof(GENERIC) / sizeof(GENERIC[0]), DDS__SQL_GENERIC); }
TEST(postgres_vectors) { run_table("postgres", POSTGRES, sizeof(POSTGRES) / sizeof(POSTGRES[0]), DDS__SQL_POSTGRESQL); }
TEST(mssql_vectors) { run_table("mssql", MSSQL, sizeof(MSSQL) / sizeof(MSSQL[0]), DDS__SQL_MSSQL); }

TEST(dbms_from_db_type) {
    CHECK_EQ_INT(dds__sql_dbms_from(DDS__SLICE_LIT("postgresql")), DDS__SQL_POSTGRESQL);
    CHECK_EQ_INT(dds__sql_dbms_from(DDS__SLICE_LIT("PostgreSQL")), DDS__SQL_POSTGRESQL);
    CHECK_EQ_INT(dds__sql_dbms_from(DDS__SLICE_LIT("mssql")), DDS__SQL_MSSQL);
    CHECK_EQ_INT(dds__sql_dbms_from(DDS__SLICE_LIT("mysql")), DDS__SQL_MYSQL);
    CHECK_EQ_INT(dds__sql_dbms_from(DDS__SLICE_LIT("oracle")), DDS__SQL_ORACLE);
    CHECK_EQ_INT(dds__sql_dbms_from(DDS__SLICE_LIT("sqlite")), DDS__SQL_GENERIC);
    CHECK_EQ_INT(dds__sql_dbms_from(DDS__SLICE_LIT("")), DDS__SQL_GENERIC);
    /* The same query, two dialects: '#' is a comment, or an operator of postgres. */
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    dds__slice out;
    CHECK_EQ_INT(dds__obfuscate_sql(DDS__SLICE_LIT("SELECT a #> 'x' FROM t"), DDS__SQL_MYSQL, &a, &out), DDS__SQL_OK);
    CHECK_EQ_SLICE(out, "SELECT a");
    CHECK_EQ_INT(dds__obfuscate_sql(DDS__SLICE_LIT("SELECT a #> 'x' FROM t"), DDS__SQL_POSTGRESQL, &a, &out),
                 DDS__SQL_OK);
    CHECK_EQ_SLICE(out, "SELECT a #> ? FROM t");
    dds__arena_free(&a);
}

/* Every prefix of every vector, each ending at a guard page: no over-read, a result either way. */
TEST(every_prefix_is_safe) {
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    for (size_t i = 0; i < sizeof(GENERIC) / sizeof(GENERIC[0]); i++) {
        size_t len = strlen(GENERIC[i].in);
        for (size_t cut = 0; cut <= len; cut++) {
            for (int d = 0; d <= DDS__SQL_ORACLE; d++) {
                char *in = test_guarded_copy(GENERIC[i].in, cut);
                dds__slice out;
                dds__sql_result r = dds__obfuscate_sql(dds__slice_make(in, cut), (dds__sql_dbms)d, &a, &out);
                CHECK(r == DDS__SQL_OK || r == DDS__SQL_NON_PARSABLE);
                CHECK(out.len <= 3 * cut + 16 + sizeof(NP));
                test_guarded_free(in, cut);
                dds__arena_reset(&a);
            }
        }
    }
    dds__arena_free(&a);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Pathological shapes stay linear: 1 MiB of each takes about as long as a tenth of it, times ten. */
TEST(linear_time) {
    static const char *const units[] = {"(", "'", "$a", "$$", "{", "/*", "`", "\"", "( 1, ", "-.", "\\'", "AS ", "a.b"};
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        double t[2];
        for (int k = 0; k < 2; k++) {
            size_t want = k ? (1u << 20) : (1u << 17), ul = strlen(units[u]), n = 0;
            char *buf = malloc(want);
            while (n + ul <= want) {
                memcpy(buf + n, units[u], ul);
                n += ul;
            }
            double t0 = now_s();
            dds__slice out;
            dds__sql_result r = dds__obfuscate_sql(dds__slice_make(buf, n), DDS__SQL_GENERIC, &a, &out);
            t[k] = now_s() - t0;
            CHECK(r == DDS__SQL_OK || r == DDS__SQL_NON_PARSABLE);
            free(buf);
            dds__arena_reset(&a);
        }
        /* 8x the input: allow 40x the time (noise on a busy machine), far below quadratic's 64x. */
        CHECK_MSG(t[1] < 40 * t[0] + 0.05, "unit '%s': %.4fs for 128 KiB, %.4fs for 1 MiB", units[u], t[0], t[1]);
    }
    dds__arena_free(&a);
}

/* An arena too small for the result fails cleanly, and a bigger one then succeeds. */
TEST(arena_exhaustion) {
    const char *q = "SELECT * FROM users WHERE name = 'alice' AND id IN (1, 2, 3) /* c */";
    for (size_t limit = 64; limit < 4096; limit += 64) {
        dds__arena a;
        dds__arena_init(&a, 64, limit);
        dds__slice out = DDS__SLICE_LIT("untouched");
        dds__sql_result r = dds__obfuscate_sql(dds__slice_cstr(q), DDS__SQL_GENERIC, &a, &out);
        if (r == DDS__SQL_OOM) {
            CHECK_EQ_SLICE(out, "untouched");
        } else {
            CHECK_EQ_INT(r, DDS__SQL_OK);
            CHECK_EQ_SLICE(out, "SELECT * FROM users WHERE name = ? AND id IN ( ? )");
        }
        dds__arena_free(&a);
    }
}

/* The cache gives what the obfuscator gives: every vector in each dialect, a miss then hits, in a
 * cache with room and in one whose budget holds a single entry at most; more queries than slots
 * (every slot replaced); a hit copies its result into the caller's arena. */
static void check_cached(dds__sql_cache *c, dds__slice q, dds__sql_dbms dbms, dds__arena *a) {
    dds__slice want, got;
    dds__sql_result rw = dds__obfuscate_sql(q, dbms, a, &want);
    for (int rep = 0; rep < 2; rep++) {
        dds__sql_result rg = dds__obfuscate_sql_cached(c, q, dbms, a, &got);
        CHECK_MSG(rg == rw && got.len == want.len && memcmp(got.ptr, want.ptr, got.len) == 0,
                  "cached %.*s (dbms %d, rep %d): %d %.*s, want %d %.*s", (int)q.len, q.ptr, (int)dbms, rep, (int)rg,
                  (int)got.len, got.ptr, (int)rw, (int)want.len, want.ptr);
    }
}

TEST(cache_gives_the_same) {
    const sql_case *tables[] = {GENERIC, POSTGRES, MSSQL};
    size_t sizes[] = {sizeof(GENERIC) / sizeof(GENERIC[0]), sizeof(POSTGRES) / sizeof(POSTGRES[0]),
                      sizeof(MSSQL) / sizeof(MSSQL[0])};
    size_t budgets[] = {1u << 20, 300, 0};
    for (size_t b = 0; b < 3; b++) {
        dds__sql_cache *c = dds__sql_cache_new(budgets[b]);
        CHECK(c != NULL);
        dds__arena a;
        dds__arena_init(&a, 0, 0);
        for (int dbms = DDS__SQL_GENERIC; dbms <= DDS__SQL_ORACLE; dbms++)
            for (size_t t = 0; t < 3; t++)
                for (size_t i = 0; i < sizes[t]; i++) check_cached(c, dds__slice_cstr(tables[t][i].in), dbms, &a);
        CHECK(dds__sql_cache_bytes(c) <= budgets[b]);
        char q[96];
        for (int i = 0; i < 3 * DDS__SQL_CACHE_SLOTS; i++) {
            snprintf(q, sizeof(q), "SELECT c%d FROM t WHERE id = %d", i % (2 * DDS__SQL_CACHE_SLOTS), i);
            check_cached(c, dds__slice_cstr(q), DDS__SQL_POSTGRESQL, &a);
            dds__arena_reset(&a);
        }
        CHECK(dds__sql_cache_bytes(c) <= budgets[b]);
        dds__arena_free(&a);
        dds__sql_cache_free(c);
    }
    /* A hit's result is the arena's copy; too long a query bypasses the cache. */
    dds__sql_cache *c = dds__sql_cache_new(1u << 20);
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    dds__slice out;
    CHECK_EQ_INT(dds__obfuscate_sql_cached(c, DDS__SLICE_LIT("SELECT 1"), DDS__SQL_GENERIC, &a, &out), DDS__SQL_OK);
    CHECK_EQ_INT(dds__obfuscate_sql_cached(c, DDS__SLICE_LIT("SELECT 1"), DDS__SQL_GENERIC, &a, &out), DDS__SQL_OK);
    CHECK_EQ_SLICE(out, "SELECT ?");
    size_t held = dds__sql_cache_bytes(c);
    size_t n = DDS__SQL_CACHE_MAX_QUERY + 1;
    char *big = malloc(n);
    memset(big, 'x', n);
    memcpy(big, "SELECT ", 7);
    check_cached(c, dds__slice_make(big, n), DDS__SQL_GENERIC, &a);
    CHECK_EQ_INT(dds__sql_cache_bytes(c), held);
    free(big);
    dds__arena_free(&a);
    dds__arena_init(&a, 64, 64);  /* too small for any copy: the hit fails as the obfuscator would */
    dds__slice untouched = DDS__SLICE_LIT("untouched");
    out = untouched;
    const char *longq = "SELECT aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa FROM t";
    dds__arena b;
    dds__arena_init(&b, 0, 0);
    CHECK_EQ_INT(dds__obfuscate_sql_cached(c, dds__slice_cstr(longq), DDS__SQL_GENERIC, &b, &out), DDS__SQL_OK);
    out = untouched;
    CHECK_EQ_INT(dds__obfuscate_sql_cached(c, dds__slice_cstr(longq), DDS__SQL_GENERIC, &a, &out), DDS__SQL_OOM);
    CHECK_EQ_SLICE(out, "untouched");
    dds__arena_free(&a);
    dds__arena_free(&b);
    dds__sql_cache_free(c);
    CHECK_EQ_INT(dds__sql_cache_bytes(NULL), 0);
}

int main(void) {
    RUN(generic_vectors);
    RUN(postgres_vectors);
    RUN(mssql_vectors);
    RUN(dbms_from_db_type);
    RUN(every_prefix_is_safe);
    RUN(linear_time);
    RUN(arena_exhaustion);
    RUN(cache_gives_the_same);
    return TEST_REPORT();
}
