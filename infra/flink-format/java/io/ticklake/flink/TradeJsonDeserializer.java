package io.ticklake.flink;

import java.io.IOException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonFactory;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParser;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonToken;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.types.logical.LogicalTypeRoot;
import org.apache.flink.table.types.logical.RowType;

/**
 * A JSON object's top-level fields as a row, by column name, strictly typed as the trade model
 * wants them: a STRING column takes a JSON string, a DOUBLE column a JSON number, a BIGINT
 * column a JSON integer that fits in 64 bits. Anything else (a missing field, null, another
 * type, an object or array) is null, and a record that is not one well-formed JSON object
 * (trailing text included) is a row of nulls: the job counts it as rejected, never fails on it.
 * The last of duplicate keys wins; fields of no column are skipped unparsed.
 */
final class TradeJsonDeserializer implements DeserializationSchema<RowData> {

    private static final long serialVersionUID = 1L;

    private final String[] names;
    private final LogicalTypeRoot[] types;
    private final TypeInformation<RowData> producedType;
    private transient JsonFactory json;
    private transient Map<String, Integer> columns;

    TradeJsonDeserializer(RowType rowType, TypeInformation<RowData> producedType) {
        List<RowType.RowField> fields = rowType.getFields();
        this.names = new String[fields.size()];
        this.types = new LogicalTypeRoot[fields.size()];
        for (int i = 0; i < names.length; i++) {
            names[i] = fields.get(i).getName();
            types[i] = fields.get(i).getType().getTypeRoot();
            if (types[i] != LogicalTypeRoot.VARCHAR && types[i] != LogicalTypeRoot.DOUBLE
                    && types[i] != LogicalTypeRoot.BIGINT) {
                throw new IllegalArgumentException(
                        "format " + TradeJsonFormatFactory.IDENTIFIER + ": column " + names[i] + " is "
                                + fields.get(i).getType() + "; only STRING, DOUBLE and BIGINT are read");
            }
        }
        this.producedType = producedType;
    }

    @Override
    public void open(InitializationContext context) {
        json = new JsonFactory();
        columns = new HashMap<>();
        for (int i = 0; i < names.length; i++) {
            columns.put(names[i], i);
        }
    }

    @Override
    public RowData deserialize(byte[] message) {
        if (message == null) {
            return new GenericRowData(names.length);
        }
        try (JsonParser parser = json.createParser(message)) {
            return read(parser);
        } catch (IOException | RuntimeException e) {
            return new GenericRowData(names.length);
        }
    }

    private RowData read(JsonParser parser) throws IOException {
        GenericRowData row = new GenericRowData(names.length);
        if (parser.nextToken() != JsonToken.START_OBJECT) {
            return new GenericRowData(names.length);
        }
        JsonToken token;
        while ((token = parser.nextToken()) == JsonToken.FIELD_NAME) {
            Integer column = columns.get(parser.currentName());
            JsonToken value = parser.nextToken();
            if (column == null) {
                parser.skipChildren();
            } else {
                row.setField(column, value(types[column], parser, value));
            }
        }
        if (token != JsonToken.END_OBJECT || parser.nextToken() != null) {
            return new GenericRowData(names.length);
        }
        return row;
    }

    private static Object value(LogicalTypeRoot type, JsonParser parser, JsonToken token) throws IOException {
        switch (type) {
            case VARCHAR:
                if (token == JsonToken.VALUE_STRING) {
                    return StringData.fromString(parser.getText());
                }
                break;
            case DOUBLE:
                if (token == JsonToken.VALUE_NUMBER_INT || token == JsonToken.VALUE_NUMBER_FLOAT) {
                    return parser.getDoubleValue();
                }
                break;
            default: // BIGINT
                if (token == JsonToken.VALUE_NUMBER_INT && parser.getNumberType() != JsonParser.NumberType.BIG_INTEGER) {
                    return parser.getLongValue();
                }
        }
        parser.skipChildren();
        return null;
    }

    @Override
    public boolean isEndOfStream(RowData nextElement) {
        return false;
    }

    @Override
    public TypeInformation<RowData> getProducedType() {
        return producedType;
    }
}
